// One benchmark run in its own process: `node --no-incremental-marking bench/runner.mjs RUNTIME MODE N FIXTURES`.
// Prints the guest-measured nanoseconds as JSON. RUNTIME: layerbox | node-wasi | shim.
import { readFileSync, readdirSync, mkdtempSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [runtime, mode, n, fixtures] = process.argv.slice(2);
const wasm = readFileSync(new URL('./bench.wasm', import.meta.url));
const module = await WebAssembly.compile(wasm);
const args = ['bench', mode, '/sandbox', n];
let out = '';

if (runtime === 'layerbox') {
  const { openStore } = await import('../dist/node.js');
  const dir = mkdtempSync(join(tmpdir(), 'lb-bench-'));
  const store = await openStore(join(dir, 'store'));
  await store.importDirectory(fixtures, { tag: 'fixtures' });
  const box = await store.createBox('bench', { image: 'fixtures' });
  const { runModule } = await import('../dist/node.js');
  const r = runModule(module, [{ guest: '/sandbox', fs: box.fs }], { args, stdout: (b) => (out += Buffer.from(b).toString()) });
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${Buffer.from(r.stderr)}`);
  await store.backend.close();
  rmSync(dir, { recursive: true, force: true });
} else if (runtime === 'node-wasi') {
  const { WASI } = await import('node:wasi');
  const dir = mkdtempSync(join(tmpdir(), 'nw-bench-'));
  cpSync(fixtures, dir, { recursive: true });
  const { writeSync } = await import('node:fs');
  const { openSync, closeSync, readFileSync: rf } = await import('node:fs');
  const outFile = join(dir, '.stdout');
  const fd = openSync(outFile, 'w');
  const wasi = new WASI({ version: 'preview1', args, env: {}, preopens: { '/sandbox': dir }, stdout: fd, returnOnExit: true });
  const inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
  const code = wasi.start(inst);
  closeSync(fd);
  out = rf(outFile, 'utf8');
  void writeSync;
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`exit ${code}`);
} else if (runtime === 'shim') {
  const shim = await import('@bjorn3/browser_wasi_shim');
  const load = (p) => {
    const m = new Map();
    for (const e of readdirSync(p, { withFileTypes: true })) {
      m.set(e.name, e.isDirectory() ? new shim.Directory(load(join(p, e.name))) : new shim.File(readFileSync(join(p, e.name))));
    }
    return m;
  };
  const stdout = shim.ConsoleStdout.lineBuffered((line) => (out += line + '\n'));
  const fds = [new shim.OpenFile(new shim.File([])), stdout, shim.ConsoleStdout.lineBuffered(() => {}), new shim.PreopenDirectory('/sandbox', load(fixtures))];
  const wasi = new shim.WASI(args, [], fds, { debug: false });
  const inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
  const code = wasi.start(inst);
  if (code !== 0) throw new Error(`exit ${code}`);
} else throw new Error(`unknown runtime ${runtime}`);

const m = /^(\w+) (\d+) (\d+)/.exec(out.trim());
if (!m) throw new Error(`unexpected output: ${out}`);
console.log(JSON.stringify({ runtime, mode, ns: Number(m[2]), check: Number(m[3]) }));
