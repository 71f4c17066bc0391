import type { Box } from '../box.js';
import { LayerboxError, describeErrno, errnoOf } from '../errno.js';
import type { RunResult } from '../run.js';
import type { Store } from '../store/store.js';
import { concatBytes, utf8 } from '../text.js';
import { BlobServer, JournalServer, createBridgeBuffer } from './bridge.js';
import { createStdinBuffer, stdinPusher } from './stdin.js';
import type { GuestMessage, StartMessage, SyncFailure } from './protocol.js';

/** A worker as the store side sees it (browser Worker or worker_threads, adapted). */
export interface GuestWorker {
  postMessage(msg: StartMessage): void;
  onMessage(cb: (m: GuestMessage) => void): void;
  onError(cb: (e: Error) => void): void;
  terminate(): void;
}

export interface RemoteRunOptions {
  args?: string[];
  env?: string[];
  /** Bytes given up front, or a stream fed while the guest runs (it blocks reading until bytes come). */
  stdin?: Uint8Array | string | AsyncIterable<Uint8Array>;
  stdout?: (b: Uint8Array) => void;
  stderr?: (b: Uint8Array) => void;
  timeoutMs?: number;
  tty?: StartMessage['tty'];
}

/** Exit code of a guest stopped by its timeout (as timeout(1) uses). */
export const TIMEOUT_EXIT = 124;

/**
 * Runs a program on `box` in a worker: the worker reads blobs through a
 * shared-memory bridge served from this side's store, streams its output
 * here, and writes its box's journal through the same bridge into this
 * side's storage (durably on fd_sync). At exit the journal is folded into
 * the store. A timeout terminates the worker; the box then keeps what was
 * synced (folded when the box is next opened). A final sync or fold that
 * fails makes the run fail with one error naming the box and the cause.
 */
export function runInGuestWorker(store: Store, box: Box, wasm: Uint8Array | WebAssembly.Module, o: RemoteRunOptions, worker: GuestWorker): Promise<RunResult & { timedOut: boolean; bytesServed: number }> {
  const sab = createBridgeBuffer();
  const server = new BlobServer(sab, store.backend);
  const journals = new JournalServer(sab, store.backend, box.name);
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const expect = box.state;
  /** What the guest synced goes into the store; a failed last sync is the run's failure, after what was synced is kept. */
  const persist = async (failed: SyncFailure | undefined) => {
    await journals.closeAll();
    if (box.name === null) return;
    try {
      await store.checkpoint(box.name, expect);
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === undefined) throw e;
      throw new LayerboxError(`box ${box.name}: its changes could not be stored: ${describeErrno(errno)} (it keeps what the guest synced; it is folded in when the box is next opened)`, { errno, cause: e });
    }
    if (failed) {
      const why = failed.errno !== undefined ? describeErrno(failed.errno) : failed.message;
      throw new LayerboxError(`box ${box.name}: its last changes could not be stored: ${why} (it keeps what the guest synced)`, failed.errno !== undefined ? { errno: failed.errno } : {});
    }
  };
  let feed: ((max: number) => Promise<void>) | null = null;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      worker.terminate();
      // Writes cut short by the end are dropped; scratch logs go.
      void journals.closeAll().finally(f);
    };
    const result = (exitCode: number, timedOut: boolean, trap?: string) => ({ exitCode, trap, timedOut, stdout: concatBytes(out), stderr: concatBytes(err), bytesServed: server.served });
    const timer = o.timeoutMs
      ? setTimeout(() => {
          const msg = utf8(`layerbox: guest stopped: no exit after ${o.timeoutMs! / 1000} s (timeout)\n`);
          if (o.stderr) o.stderr(msg);
          else err.push(msg);
          finish(() => resolve(result(TIMEOUT_EXIT, true)));
        }, o.timeoutMs)
      : undefined;
    worker.onError((e) => finish(() => reject(e)));
    worker.onMessage((m) => {
      switch (m.t) {
        case 'read':
          void server.answer(m);
          break;
        case 'journal':
          void journals.answer(m);
          break;
        case 'stdin':
          void feed?.(m.max);
          break;
        case 'out': {
          const sink = m.fd === 1 ? o.stdout : o.stderr;
          if (sink) sink(m.data);
          else (m.fd === 1 ? out : err).push(m.data);
          break;
        }
        case 'exit':
          persist(m.syncFailed).then(
            () => finish(() => resolve(result(m.code, false, m.trap))),
            (e) => finish(() => reject(e)),
          );
          break;
        case 'error':
          finish(() => reject(new LayerboxError(m.message)));
          break;
      }
    });
    const streamed = o.stdin !== undefined && typeof o.stdin !== 'string' && !(o.stdin instanceof Uint8Array);
    const stdinSab = streamed ? createStdinBuffer() : undefined;
    feed = stdinSab ? stdinPusher(stdinSab, o.stdin as AsyncIterable<Uint8Array>) : null;
    const stdin = typeof o.stdin === 'string' ? utf8(o.stdin) : o.stdin instanceof Uint8Array ? o.stdin : new Uint8Array();
    worker.postMessage({ t: 'start', sab, stdinSab, name: box.name, record: box.state, chunkSize: store.chunkSize, cacheBytes: store.cacheBytes, journalCompactBytes: store.journalCompactBytes, wasm, args: o.args ?? ['main'], env: o.env ?? [], stdin, tty: o.tty });
  });
}
