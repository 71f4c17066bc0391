import { closeSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { LayerboxError, type LayerboxCode, type RunResult } from '../../src/index.js';
import { openMountRoot } from './host-fs.js';

export interface WorkerRequest {
  /** Directory store path: the worker opens it itself. */
  store: string;
  box?: string;
  /** With no box: an ephemeral box over this image. */
  image?: string;
  /** Host .wasm path, `BOX:/path`, or the bytes. */
  program: string | Uint8Array;
  args: string[];
  env: string[];
  /** `fd`: the mount's root handle, opened by runInWorker (see openMountRoot) and closed when the worker ends. */
  dirs: Array<{ host: string; guest: string; fd?: number }>;
  /** inherit: the guest writes straight to this process's stdout/stderr; pipe: chunks come back as messages. */
  stdio: 'inherit' | 'pipe';
  stdin?: Uint8Array | 'inherit';
  /** Caps the guest's linear memory (see capMemory). */
  maxMemoryBytes?: number;
  /** Bytes of written data the box keeps in memory before they spill to its journal (default 64 MiB). */
  cacheBytes?: number;
  /** At the end, leave a small journal as it is (durable) instead of folding it into the store (see Box.flush). */
  lazyFlush?: boolean;
}

export type WorkerMessage =
  | { kind: 'stdout' | 'stderr'; data: Uint8Array }
  | { kind: 'exit'; exitCode: number; trap?: string }
  /** `errno`: the host failure behind it (ENOSPC while flushing the box...), so the parent's message can name it. */
  | { kind: 'error'; message: string; name: string; errno?: number; code?: LayerboxCode };

export interface WorkerRunOptions {
  timeoutMs?: number;
  /** Stops the guest when aborted, as a timeout does (exit status 124, `timedOut` false). */
  signal?: AbortSignal;
  onStdout?: (b: Uint8Array) => void;
  onStderr?: (b: Uint8Array) => void;
}

/** Exit code of a guest stopped by its timeout (as timeout(1) uses). */
export const TIMEOUT_EXIT = 124;

function workerUrl(): URL {
  const candidates = [new URL('./worker.js', import.meta.url), new URL('../../dist/worker.js', import.meta.url)];
  const found = candidates.find((u) => existsSync(fileURLToPath(u)));
  if (!found) throw new LayerboxError('the worker bundle (dist/worker.js) is missing: run npm run build', { code: 'NOT_FOUND' });
  return found;
}

/**
 * Runs a guest in a worker thread over a directory store. A timeout
 * terminates the worker: the guest stops, the host goes on, and the box keeps
 * its state from before the run.
 */
export function runInWorker(req: WorkerRequest, o: WorkerRunOptions = {}): Promise<RunResult & { timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    // The parent holds the mount roots, so they are closed even when a timeout terminates the worker.
    const roots: number[] = [];
    let w: Worker;
    try {
      for (const d of req.dirs) roots.push(openMountRoot(d.host));
      w = new Worker(workerUrl(), { workerData: { ...req, dirs: req.dirs.map((d, i) => ({ ...d, fd: roots[i] })) }, stdout: false, stderr: false });
    } catch (e) {
      for (const fd of roots) closeSync(fd);
      reject(e);
      return;
    }
    // Once the guest is over (its exit message, an error, a timeout) no call reaches the mounts again.
    const releaseRoots = () => {
      for (const fd of roots.splice(0)) closeSync(fd);
    };
    w.on('exit', releaseRoots);
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    let done = false;
    const finish = (r: RunResult & { timedOut: boolean }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      releaseRoots();
      resolve(r);
    };
    const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
    const stop = (why: string, timedOut: boolean) => {
      if (done) return;
      void w.terminate().then(() => {
        const msg = new TextEncoder().encode(`layerbox: guest stopped: ${why}\n`);
        if (o.onStderr) o.onStderr(msg);
        else err.push(msg);
        finish({ exitCode: TIMEOUT_EXIT, stdout: concat(out), stderr: concat(err), timedOut });
      });
    };
    const timer = o.timeoutMs ? setTimeout(() => stop(`no exit after ${o.timeoutMs! / 1000} s (timeout)`, true), o.timeoutMs) : undefined;
    const onAbort = () => stop('stopped by the host', false);
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
    w.on('exit', () => o.signal?.removeEventListener('abort', onAbort));
    w.on('message', (m: WorkerMessage) => {
      if (m.kind === 'stdout' || m.kind === 'stderr') {
        const sink = m.kind === 'stdout' ? o.onStdout : o.onStderr;
        if (sink) sink(m.data);
        else (m.kind === 'stdout' ? out : err).push(m.data);
      } else if (m.kind === 'exit') {
        finish({ exitCode: m.exitCode, trap: m.trap, stdout: concat(out), stderr: concat(err), timedOut: false });
        void w.terminate();
      } else {
        done = true;
        clearTimeout(timer);
        void w.terminate();
        const f = m as { message: string; errno?: number; code?: LayerboxCode };
        reject(new LayerboxError(f.message, { errno: f.errno, code: f.code }));
      }
    });
    w.on('error', (e) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(e);
      }
    });
  });
}
