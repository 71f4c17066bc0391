// Running a box's program: a WASI command with box.run (in a Web Worker when
// the page is cross-origin isolated, so a timeout can stop it), or Ruby, a
// reactor driven on the page through box.wasi and RubyVM.
import { RubyVM } from '@ruby/wasm-wasi';
import { type Box, WasiExit } from '../../runtime/browser/index.js';
import type { RunSpec } from './catalog.js';

/** Exit status of a run the timeout stopped, and of a trap (as the CLI gives them). */
export const TIMEOUT_EXIT = 124;
export const TRAP_EXIT = 134;

export interface Outcome {
  exitCode: number;
  timedOut: boolean;
  trap?: string;
  /** An error the program's glue raised (e.g. a Ruby exception), already shown as stderr. */
  error?: string;
  ms: number;
}

export interface Io {
  out(data: Uint8Array | string): void;
  err(data: Uint8Array | string): void;
}

/** Compiled programs by file identity (path and chunk digests), so a second run skips compiling. */
const compiled = new Map<string, WebAssembly.Module>();

async function programModule(box: Box, path: string): Promise<WebAssembly.Module> {
  const st = box.fs.tryStat(path);
  if (!st || st.type !== 'file') throw new Error(`this box has no ${path}: the program is missing (was it deleted? Reset the box to get it back)`);
  const node = box.fs.open(path).node;
  const chunks = node.kind === 'file' ? [...node.chunks].sort((a, b) => a[0] - b[0]) : [];
  const stable = chunks.every(([, c]) => typeof c === 'string');
  const key = stable ? `${path} ${st.size} ${chunks.map(([k, c]) => `${k}:${c as string}`).join(',')}` : null;
  const hit = key ? compiled.get(key) : undefined;
  if (hit) return hit;
  const module = await WebAssembly.compile((await box.readFile(path)) as Uint8Array<ArrayBuffer>);
  if (key) compiled.set(key, module);
  return module;
}

/** Runs a WASI command over the box; output streams to `io`. */
export async function runCommand(box: Box, spec: Extract<RunSpec, { kind: 'command' }>, opts: { args: string[]; stdin: string | AsyncIterable<Uint8Array>; timeoutMs: number }, io: Io): Promise<Outcome> {
  const module = await programModule(box, spec.program);
  const t0 = performance.now();
  // Without a worker (a page that is not cross-origin isolated) the guest runs
  // here and reads the box synchronously: its data must be in memory first.
  let stdin = opts.stdin;
  if (!box.store.runner) {
    await box.load();
    if (typeof stdin !== 'string') stdin = '';
  }
  const r = await box.run(module, { args: opts.args, stdin, stdout: (b) => io.out(b), stderr: (b) => io.err(b), timeoutMs: opts.timeoutMs });
  const timedOut = (r as { timedOut?: boolean }).timedOut === true;
  return { exitCode: r.exitCode, timedOut, trap: r.trap, ms: performance.now() - t0 };
}

/**
 * Ruby runs on the page's thread, where no worker can be stopped: a
 * TracePoint checks the clock every few thousand lines, calls and blocks and
 * raises an exception that `rescue => e` does not catch once the time is up.
 * A loop that makes none of those events (`while true; end`) is not stopped.
 */
function watchdog(seconds: number): string {
  return `
class PlaygroundTimeout < Exception; end
$__lb_deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + ${seconds}
$__lb_ticks = 0
TracePoint.new(:line, :call, :b_call) do
  $__lb_ticks += 1
  if $__lb_ticks % 4096 == 0 && Process.clock_gettime(Process::CLOCK_MONOTONIC) > $__lb_deadline
    raise PlaygroundTimeout, 'no exit after ${seconds} s'
  end
end.enable
`;
}

/**
 * Evaluates Ruby code in a fresh VM over the box: ruby.wasm read from the
 * box, its standard library reached through a second mount at `loadPath`
 * (ruby.wasm's own embedded /usr would shadow the box's). The box's changes
 * are flushed after.
 */
export async function runRuby(box: Box, spec: Extract<RunSpec, { kind: 'ruby' }>, code: string, timeoutMs: number, io: Io, loading: (what: string) => Promise<void>): Promise<Outcome> {
  await loading('Loading the Ruby image into memory');
  await box.load();
  const module = await programModule(box, spec.program);
  await loading('Running Ruby');
  const t0 = performance.now();
  const args = ['ruby', '-EUTF-8', '-e_=0'];
  const wasi = box.wasi({ args, stdout: (b) => io.out(b), stderr: (b) => io.err(b), mounts: [{ guest: spec.loadPath, fs: box.fs, path: spec.loadPath }] });
  let exitCode = 0;
  let timedOut = false;
  let trap: string | undefined;
  let error: string | undefined;
  try {
    const { vm } = await RubyVM.instantiateModule({ module, wasip1: wasi, args });
    vm.eval('$stdout.sync = true; $stderr.sync = true');
    vm.eval(watchdog(timeoutMs / 1000));
    vm.eval(code);
  } catch (e) {
    if (e instanceof WasiExit) exitCode = e.code;
    else if (e instanceof Error && /PlaygroundTimeout/.test(e.message)) {
      exitCode = TIMEOUT_EXIT;
      timedOut = true;
      io.err(`layerbox: ruby stopped: no exit after ${timeoutMs / 1000} s (timeout)\n`);
    }
    else if (e instanceof WebAssembly.RuntimeError) {
      exitCode = TRAP_EXIT;
      trap = e.message;
    } else {
      exitCode = 1;
      error = e instanceof Error ? e.message : String(e);
      io.err(`${error.replace(/\s+$/, '')}\n`);
    }
  } finally {
    await box.flush();
  }
  return { exitCode, timedOut, trap, error, ms: performance.now() - t0 };
}
