// Runs a guest in a box through the library, in one of the ways a program can
// (argv: STORE BOX WASM HOW [HOSTDIR] -- GUEST-ARGS...), its stdout written
// straight to this process's stdout:
//   bytes    box.run(bytes)              (the worker runner, over a directory store)
//   module   box.run(compiled module)    (no worker runner: on this thread)
//   mount    box.run(bytes, { mounts })  with HOSTDIR mounted at /data
//   wasi     box.wasi() and the module driven here (as a reactor's glue does)
import { readFileSync, writeSync } from 'node:fs';
import { HostFs, openStore } from '../../dist/node.js';

const argv = process.argv.slice(2);
const cut = argv.indexOf('--');
const [storeDir, boxName, wasmPath, how, hostDir] = argv.slice(0, cut);
const args = argv.slice(cut + 1);
const store = await openStore(storeDir);
const box = await store.openBox(boxName);
const bytes = new Uint8Array(readFileSync(wasmPath));
const stdout = (b) => {
  for (let n = 0; n < b.length;) n += writeSync(1, b, n, b.length - n);
};
let code;
if (how === 'bytes') code = (await box.run(bytes, { args, stdout })).exitCode;
else if (how === 'module') code = (await box.run(await WebAssembly.compile(bytes), { args, stdout })).exitCode;
else if (how === 'mount') code = (await box.run(bytes, { args, stdout, mounts: [{ guest: '/data', fs: new HostFs(hostDir) }] })).exitCode;
else if (how === 'wasi') {
  const wasi = box.wasi({ args, stdout });
  const instance = new WebAssembly.Instance(await WebAssembly.compile(bytes), { wasi_snapshot_preview1: wasi.wasiImport });
  code = wasi.start(instance);
  await box.flush();
} else throw new Error(`unknown way of running: ${how}`);
process.exitCode = code;
