// The node:wasi side of the write-path rows (bench/writes.mjs): one guest run in
// this process, as a user would run it, with a real directory as /.
//   node --no-incremental-marking bench/wasi-child.mjs WASM ROOT [K=V]... -- ARGS...
// The guest's stdout and stderr are this process's. The last stdout line is JSON:
// { code, fsyncs } (fsyncs: the guest's fd_sync/fd_datasync calls).
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [wasmPath, rootDir, ...rest] = process.argv.slice(2);
const cut = rest.indexOf('--');
if (!wasmPath || !rootDir || cut < 0) throw new Error('usage: wasi-child.mjs WASM ROOT [K=V]... -- ARGS...');
const env = Object.fromEntries(rest.slice(0, cut).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const wasi = new WASI({ version: 'preview1', args: rest.slice(cut + 1), env, preopens: { '/': rootDir }, returnOnExit: true });
let fsyncs = 0;
const imports = { ...wasi.wasiImport };
for (const name of ['fd_sync', 'fd_datasync']) {
  const real = wasi.wasiImport[name];
  imports[name] = (...a) => {
    fsyncs++;
    return real(...a);
  };
}
const module = await WebAssembly.compile(readFileSync(wasmPath));
const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: imports });
const code = wasi.start(instance);
console.log(JSON.stringify({ code, fsyncs }));
process.exitCode = code;
