// One guest run over an open store, as `layerbox run` and the worker do it:
// open the box (or an ephemeral one), compile, run, flush. Shared by the worker
// thread (runs that can be stopped) and the command line's in-process runs.
import * as fs from 'node:fs';
import { isatty } from 'node:tty';
import { type Mount, type Store, capMemory, runModule } from '../../src/index.js';
import { stderrHostErrors } from './host-error.js';
import { HostFs } from './host-fs.js';
import type { WorkerRequest } from './run.js';

/** Something to block on for a moment (a full stdout pipe, stdin with nothing yet). */
const pause = new Int32Array(new SharedArrayBuffer(4));

function stdinSource(req: WorkerRequest): (max: number) => Uint8Array | null {
  if (req.stdin !== 'inherit') {
    const bytes = req.stdin ?? new Uint8Array();
    let pos = 0;
    return (max) => {
      if (pos >= bytes.length) return null;
      const out = bytes.subarray(pos, pos + max);
      pos += out.length;
      return out;
    };
  }
  return (max) => {
    const buf = Buffer.alloc(Math.max(1, Math.min(max, 65536)));
    for (;;) {
      try {
        const n = fs.readSync(0, buf, 0, buf.length, null);
        return n ? new Uint8Array(buf.buffer, buf.byteOffset, n) : null;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') Atomics.wait(pause, 0, 0, 10);
        else if (code === 'EOF') return null;
        else throw e;
      }
    }
  };
}

/** Writes all of `b` to a descriptor that may be a non-blocking pipe: a full one is waited out, never an error for the guest. */
function writeAll(fd: number, b: Uint8Array): void {
  for (let n = 0; n < b.length;) {
    try {
      n += fs.writeSync(fd, b, n, b.length - n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/**
 * Runs `req` against `store`. With `stdio: 'pipe'` the guest's output goes to
 * `pipe`; with 'inherit', straight to this process's descriptors 1 and 2.
 * Host mounts use the root descriptors in `req.dirs[i].fd`, which the caller
 * owns. The box is flushed before this returns: made durable, and folded
 * into the store unless `lazyFlush` leaves a small journal (see Box.flush).
 */
export async function runGuest(req: WorkerRequest, store: Store, pipe?: (which: 'stdout' | 'stderr', data: Uint8Array) => void): Promise<{ exitCode: number; trap?: string }> {
  const inBox = typeof req.program === 'string' ? /^([A-Za-z0-9][A-Za-z0-9._-]*):(\/.*)$/.exec(req.program) : null;
  const compile = (wasm: Uint8Array) => WebAssembly.compile(req.maxMemoryBytes === undefined ? wasm : capMemory(wasm, req.maxMemoryBytes));
  // A program from the host (or given as bytes) compiles on V8's threads while the box opens.
  const early = inBox ? null : compile(typeof req.program === 'string' ? new Uint8Array(fs.readFileSync(req.program)) : req.program as Uint8Array);
  early?.catch(() => {}); // awaited below; a box that fails to open first must not leave it unhandled
  const box = req.box ? await store.openBox(req.box) : await store.ephemeralBox(req.image!);
  try {
    const module = early ? await early : await compile((inBox![1] === req.box ? box : await store.openBox(inBox![1]!)).fs.readFile(inBox![2]!));
    const write = (fd: number, which: 'stdout' | 'stderr') => (b: Uint8Array) => {
      if (req.stdio === 'inherit' || !pipe) writeAll(fd, b);
      else pipe(which, b.slice());
    };
    const hostMounts = req.dirs.map((d) => ({ guest: d.guest, fs: new HostFs(d.host, d.fd) }));
    const mounts: Mount[] = [{ guest: '/', fs: box.fs }, ...hostMounts];
    let r: ReturnType<typeof runModule>;
    try {
      r = runModule(module, mounts, {
        onHostError: req.stdio === 'inherit' ? stderrHostErrors() : undefined,
        args: req.args,
        env: [...box.config.env, ...req.env],
        stdin: stdinSource(req),
        stdout: write(1, 'stdout'),
        stderr: write(2, 'stderr'),
        tty: req.stdio === 'inherit' ? { stdin: req.stdin === 'inherit' && isatty(0), stdout: isatty(1), stderr: isatty(2) } : undefined,
        trace: process.env.LAYERBOX_TRACE ? (name, args, result) => fs.writeSync(2, `[wasi] ${name}(${args.map(String).join(', ')}) = ${result}\n`) : undefined,
      });
    } finally {
      // Files the guest left open in a host mount (worker threads share the process's descriptors).
      for (const m of hostMounts) m.fs.close();
    }
    await box.flush({ lazy: req.lazyFlush });
    return { exitCode: r.exitCode, trap: r.trap };
  } finally {
    box.close();
  }
}
