import { concatBytes } from './text.js';
import { DIR_RIGHTS, FILE_RIGHTS } from './wasi/defs.js';
import type { Fd } from './wasi/fd.js';
import { DirFd, type FsFdContext } from './wasi/fs-fd.js';
import type { GuestFs } from './wasi/guest-fs.js';
import { WasiHost, type WasiEnv, defaultWasiEnv } from './wasi/host.js';
import { InputFd, OutputFd, bytesSource } from './wasi/stdio.js';

/** A directory made visible to the guest as a preopen. */
export interface Mount {
  /** The name the guest sees (`/`, `/data`). */
  guest: string;
  fs: GuestFs;
  /** Directory inside `fs` (default `/`). */
  path?: string;
}

export interface GuestIo {
  args?: string[];
  /** `KEY=value` strings; the guest sees nothing else of the host's environment. */
  env?: string[];
  stdin?: Uint8Array | string | ((max: number) => Uint8Array | null);
  /** Streams: called as the guest writes. Without them output is collected. */
  stdout?: (data: Uint8Array) => void;
  stderr?: (data: Uint8Array) => void;
  /** Which stdio streams are terminals (isatty() in the guest); none by default. */
  tty?: { stdin?: boolean; stdout?: boolean; stderr?: boolean };
  /** Called on fd_sync/fd_datasync. */
  onSync?: () => void;
  trace?: (name: string, args: unknown[], result: unknown) => void;
  /** Told of a host exception behind an EIO the guest got (see WasiOptions.onHostError). */
  onHostError?: (call: string, error: unknown) => void;
  wasiEnv?: WasiEnv;
  /** Extra fds (e.g. browser_wasi_shim ones) appended after the preopens. */
  extraFds?: Fd[];
}

export interface RunResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** Set when the guest trapped (exit code 134). */
  trap?: string;
}

/** The fd table of a run: stdio, one preopen per mount, then extras. */
export function guestFds(mounts: Mount[], io: GuestIo, collect: { out: Uint8Array[]; err: Uint8Array[] }): (Fd | undefined)[] {
  const stdin = io.stdin === undefined ? bytesSource(new Uint8Array()) : typeof io.stdin === 'function' ? io.stdin : bytesSource(typeof io.stdin === 'string' ? new TextEncoder().encode(io.stdin) : io.stdin);
  const fds: (Fd | undefined)[] = [
    new InputFd(stdin, io.tty?.stdin),
    new OutputFd(io.stdout ?? ((b) => collect.out.push(b.slice())), io.tty?.stdout),
    new OutputFd(io.stderr ?? ((b) => collect.err.push(b.slice())), io.tty?.stderr),
  ];
  const env = io.wasiEnv ?? defaultWasiEnv;
  mounts.forEach((m, i) => {
    const root = m.path ?? '/';
    const ctx: FsFdContext = { fs: m.fs, root, now: env.realtime, onSync: io.onSync, dev: BigInt(i + 1) };
    fds.push(new DirFd(ctx, root, DIR_RIGHTS, DIR_RIGHTS | FILE_RIGHTS, m.guest));
  });
  for (const f of io.extraFds ?? []) fds.push(f);
  return fds;
}

/**
 * Runs a WASI command module to completion on the calling thread. A trap
 * gives exit code 134 and the reason; the guest's exit code otherwise.
 */
export function runModule(module: WebAssembly.Module, mounts: Mount[], io: GuestIo = {}): RunResult {
  const collect = { out: [] as Uint8Array[], err: [] as Uint8Array[] };
  const host = new WasiHost({ args: io.args ?? ['main'], env: io.env ?? [], fds: guestFds(mounts, io, collect), wasiEnv: io.wasiEnv, trace: io.trace, onHostError: io.onHostError });
  let exitCode: number;
  let trap: string | undefined;
  try {
    const imports: Record<string, Record<string, unknown>> = { wasi_snapshot_preview1: host.wasiImport };
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.module !== 'wasi_snapshot_preview1' && imp.module !== 'wasi_unstable') throw new WebAssembly.LinkError(`the program imports ${imp.module}.${imp.name}, which a WASI host does not provide`);
    }
    imports.wasi_unstable = host.wasiImport;
    const instance = new WebAssembly.Instance(module, imports as never);
    if (typeof instance.exports._start !== 'function') throw new WebAssembly.LinkError('the module has no _start (not a WASI command)');
    exitCode = host.start(instance);
  } catch (e) {
    exitCode = 134;
    trap = e instanceof Error ? `${e.name === 'RuntimeError' ? 'trap' : e.name}: ${e.message}` : String(e);
    const msg = new TextEncoder().encode(`layerbox: guest ${trap}\n`);
    if (io.stderr) io.stderr(msg);
    else collect.err.push(msg);
  }
  return { exitCode, stdout: concatBytes(collect.out), stderr: concatBytes(collect.err), trap };
}
