// Runs one test/wasi program under @wasmer/wasi (its in-memory MemFS; fd 3 is
// the MemFS root, where /sandbox is created first). Prints JSON
// {stdout, stderr, exitCode} — a second reference runtime for the
// differential tests, used where it can run a program at all.
//   node test/wasi/run-wasmer.mjs prog.wasm [args...]
import { init, WASI } from '@wasmer/wasi';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { FIXED_ENV } from './run-node-wasi.mjs';

export async function runWasmer(wasmPath, args = []) {
  await init();
  const module = await WebAssembly.compile(readFileSync(wasmPath));
  const wasi = new WASI({ args: [basename(wasmPath, '.wasm'), '/sandbox', ...args], env: { ...FIXED_ENV } });
  wasi.fs.createDir('/sandbox');
  let exitCode;
  let error = null;
  try {
    exitCode = wasi.start(wasi.instantiate(module, {}));
  } catch (e) {
    error = String(e?.message ?? e).slice(0, 200);
    exitCode = null;
  }
  return { stdout: wasi.getStdoutString(), stderr: wasi.getStderrString(), exitCode, error };
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  const [prog, ...rest] = process.argv.slice(2);
  process.stdout.write(JSON.stringify(await runWasmer(prog, rest)) + '\n');
}
