// Runs one test/wasi program under node:wasi (preview1), the reference runtime
// for the differential tests.
//
//   node --no-incremental-marking test/wasi/run-node-wasi.mjs [options] prog.wasm [args...]
//
// The guest sees a real host temp directory preopened at /sandbox and gets
// argv = [<name>, '/sandbox', ...args] where <name> is the wasm file's base
// name without `.wasm`. The environment is FIXED_ENV below plus any --env.
// stdin is /dev/null. The guest writes straight to the runner's fds 1 and 2
// (streamed, so a hang still shows how far it got), and the runner exits with
// the guest's exit code. A trap (e.g. `unreachable`) prints `[trap] <message>`
// on stderr and exits with 134.
//
// Options (before prog.wasm):
//   --dir <hostdir>   preopen this host directory instead of a fresh temp dir
//                     (it is kept afterwards)
//   --keep            keep the temp directory and print its path on stderr
//   --env K=V         add/override an environment variable (repeatable)
//   --no-env          start from an empty environment instead of FIXED_ENV
//   --json            run in a child process and print one JSON object
//                     {stdout, stderr, exitCode, trap} (the runner exits 0)
//   --timeout <ms>    with --json: kill the child after this long (60000)
//
// Why --no-incremental-marking: node:wasi on Node 20 can crash the process
// (SIGSEGV / V8 fatal error) once a guest grows memory and makes WASI calls.
// The flag is refused in NODE_OPTIONS, so it must be on the command line; the
// runner re-executes itself with the flag when it is missing.
// Why returnOnExit: without it, the guest's proc_exit ends the whole node
// process; with it, wasi.start() returns the exit code.
//
// As a module: `runNodeWasi(wasmPath, args, opts)` resolves to
// {stdout, stderr, exitCode, trap}. It spawns a child node with the flag, so it
// is safe to call from a test process. The child's guest output goes through
// pipes (what poll.c sees as stdout); the result comes back on fd 3.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

export const SANDBOX = '/sandbox';

/** Environment every run gets unless --no-env (args_env.c prints from it). */
export const FIXED_ENV = Object.freeze({
  LAYERBOX_A: 'alpha',
  LAYERBOX_B: 'two words',
  LAYERBOX_EMPTY: '',
  LAYERBOX_UTF8: 'h\u00e9llo w\u00f6rld',
});

/** Exit status the CLI uses for a trap (128 + SIGABRT, like a native abort). */
export const TRAP_EXIT = 134;

const SELF = fileURLToPath(import.meta.url);

/**
 * Runs a program in a child `node --no-incremental-marking` process.
 * @param {string} wasmPath
 * @param {string[]} [args] extra guest args after '/sandbox'
 * @param {{dir?: string, env?: Record<string,string>, noEnv?: boolean, timeoutMs?: number}} [opts]
 * @returns {Promise<{stdout: string, stderr: string, exitCode: number|null, trap: string|null}>}
 */
export function runNodeWasi(wasmPath, args = [], opts = {}) {
  const cli = ['--no-incremental-marking', SELF, '--result-fd', '3'];
  if (opts.dir) cli.push('--dir', opts.dir);
  if (opts.noEnv) cli.push('--no-env');
  for (const [k, v] of Object.entries(opts.env ?? {})) cli.push('--env', `${k}=${v}`);
  cli.push('--', wasmPath, ...args);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cli, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    const res = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdio[3].on('data', (d) => res.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      let result;
      try {
        result = JSON.parse(Buffer.concat(res).toString('utf8'));
      } catch {
        const why = timedOut ? 'timed out' : `code ${code}, signal ${signal}`;
        reject(new Error(`node:wasi runner failed (${why})\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
        return;
      }
      resolve({ stdout, stderr, exitCode: result.exitCode, trap: result.trap });
    });
  });
}

function parseArgv(argv) {
  const o = {
    dir: null,
    keep: false,
    env: {},
    noEnv: false,
    json: false,
    timeoutMs: 60_000,
    resultFd: null,
    wasm: null,
    args: [],
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dir') o.dir = argv[++i];
    else if (a === '--keep') o.keep = true;
    else if (a === '--no-env') o.noEnv = true;
    else if (a === '--json') o.json = true;
    else if (a === '--timeout') o.timeoutMs = Number(argv[++i]);
    else if (a === '--result-fd') o.resultFd = Number(argv[++i]);
    else if (a === '--env') {
      const kv = argv[++i] ?? '';
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`--env expects K=V, got ${JSON.stringify(kv)}`);
      o.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a === '--') {
      i++;
      break;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else break;
  }
  o.wasm = argv[i];
  o.args = argv.slice(i + 1);
  if (!o.wasm) throw new Error('usage: run-node-wasi.mjs [options] prog.wasm [args...]');
  return o;
}

/** Runs the guest in this process; guest stdio is our fds 0 (/dev/null), 1, 2. */
async function runHere(o) {
  // node:wasi warns that it is experimental; keep every other warning.
  const defaultWarningListeners = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name !== 'ExperimentalWarning') for (const l of defaultWarningListeners) l.call(process, w);
  });
  const { WASI } = await import('node:wasi');

  const hostDir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'layerbox-wasi-'));
  const name = path.basename(o.wasm).replace(/\.wasm$/, '');
  const env = { ...(o.noEnv ? {} : FIXED_ENV), ...o.env };
  const stdinFd = fs.openSync('/dev/null', 'r');
  const wasi = new WASI({
    version: 'preview1',
    args: [name, SANDBOX, ...o.args],
    env,
    preopens: { [SANDBOX]: hostDir },
    stdin: stdinFd,
    // Our own fds, untouched by process.stdout/stderr so that Node never makes
    // them non-blocking (a guest write to a full pipe would then fail).
    stdout: 1,
    stderr: 2,
    returnOnExit: true,
  });

  let exitCode = null;
  let trap = null;
  try {
    const module = await WebAssembly.compile(fs.readFileSync(o.wasm));
    const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
    exitCode = wasi.start(instance);
  } catch (e) {
    trap = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
  } finally {
    fs.closeSync(stdinFd);
    if (!o.dir) {
      if (o.keep) fs.writeSync(2, `[sandbox kept at ${hostDir}]\n`);
      else fs.rmSync(hostDir, { recursive: true, force: true });
    }
  }
  return { exitCode, trap };
}

async function main() {
  // Re-exec with the flag if it is missing (see the header comment).
  if (!process.execArgv.includes('--no-incremental-marking')) {
    const r = spawnSync(
      process.execPath,
      ['--no-incremental-marking', ...process.execArgv, SELF, ...process.argv.slice(2)],
      { stdio: 'inherit' },
    );
    return r.status ?? 1;
  }

  const o = parseArgv(process.argv.slice(2));
  if (o.json) {
    const r = await runNodeWasi(o.wasm, o.args, {
      dir: o.dir ?? undefined,
      env: o.env,
      noEnv: o.noEnv,
      timeoutMs: o.timeoutMs,
    });
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }

  const { exitCode, trap } = await runHere(o);
  if (o.resultFd !== null) {
    fs.writeSync(o.resultFd, JSON.stringify({ exitCode, trap }));
    return 0;
  }
  if (trap !== null) {
    fs.writeSync(2, `[trap] ${trap}\n`);
    return TRAP_EXIT;
  }
  return exitCode;
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      fs.writeSync(2, `run-node-wasi: ${e?.stack ?? e}\n`);
      process.exitCode = 70;
    },
  );
}
