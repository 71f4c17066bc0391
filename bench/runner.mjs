// One benchmark run in its own process: `node --no-incremental-marking bench/runner.mjs RUNTIME MODE N FIXTURES`.
// Prints the guest-measured nanoseconds as JSON (or { error }). RUNTIME: layerbox | node-wasi | shim | wasmer.
// FIXTURES is the tree the guest sees at /sandbox (bench/.fixtures/syscalls: list/, big.bin).
import { closeSync, cpSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report } from './child.mjs';

const [runtime, mode, n, fixtures] = process.argv.slice(2);

await report(async () => {
  const wasm = readFileSync(new URL('./bench.wasm', import.meta.url));
  const module = await WebAssembly.compile(wasm);
  const args = ['bench', mode, '/sandbox', n];
  let out = '';

  if (runtime === 'layerbox') {
    const { openStore, runModule } = await import('../dist/node.js');
    const dir = mkdtempSync(join(tmpdir(), 'lb-bench-'));
    try {
      const store = await openStore(join(dir, 'store'));
      await store.importDirectory(fixtures, { tag: 'fixtures' });
      const box = await store.createBox('bench', { image: 'fixtures' });
      const r = runModule(module, [{ guest: '/sandbox', fs: box.fs }], { args, stdout: (b) => (out += Buffer.from(b).toString()) });
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${Buffer.from(r.stderr)}`);
      await store.backend.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else if (runtime === 'node-wasi') {
    const { WASI } = await import('node:wasi');
    const dir = mkdtempSync(join(tmpdir(), 'nw-bench-'));
    try {
      cpSync(fixtures, dir, { recursive: true });
      const outFile = join(dir, '.stdout');
      const fd = openSync(outFile, 'w');
      const wasi = new WASI({ version: 'preview1', args, env: {}, preopens: { '/sandbox': dir }, stdout: fd, returnOnExit: true });
      const inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
      const code = wasi.start(inst);
      closeSync(fd);
      out = readFileSync(outFile, 'utf8');
      if (code !== 0) throw new Error(`exit ${code}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
  } else if (runtime === 'wasmer') {
    // Its MemFS lives inside wasmer's own wasm; the tree is copied in through its fs API.
    // Its preopen (fd 3) is the MemFS's `/`, so the tree goes to /sandbox there.
    const { init, WASI, MemFS } = await import('@wasmer/wasi');
    await init();
    const fs = new MemFS();
    const load = (p, to) => {
      for (const e of readdirSync(p, { withFileTypes: true })) {
        const t = `${to}/${e.name}`;
        if (e.isDirectory()) {
          fs.createDir(t);
          load(join(p, e.name), t);
        } else {
          const f = fs.open(t, { read: true, write: true, create: true });
          f.write(readFileSync(join(p, e.name)));
          f.free();
        }
      }
    };
    fs.createDir('/sandbox');
    load(fixtures, '/sandbox');
    const wasi = new WASI({ args, env: {}, fs });
    const inst = await wasi.instantiate(module, {});
    const code = wasi.start(inst);
    out = wasi.getStdoutString();
    if (code !== 0) throw new Error(`exit ${code}: ${wasi.getStderrString()}`);
  } else throw new Error(`unknown runtime ${runtime}`);

  const m = /^(\w+) (\d+) (\d+)/.exec(out.trim());
  if (!m) throw new Error(`unexpected output: ${out}`);
  return { runtime, mode, ns: Number(m[2]), check: Number(m[3]) };
});
