import type { Box, RunOptions, RunResult, Store } from '../../src/index.js';
import { type GuestWorker, type RemoteRunOptions, runInGuestWorker } from '../../src/remote/host.js';
import type { GuestMessage, StartMessage } from '../../src/remote/protocol.js';

/** Where the guest worker bundle is; by default next to this module (dist/browser-worker.js). */
export function defaultWorkerUrl(): URL {
  return new URL('./browser-worker.js', import.meta.url);
}

function webWorker(url: URL | string): GuestWorker {
  const w = new Worker(url, { type: 'module' });
  return {
    postMessage: (m: StartMessage) => w.postMessage(m),
    onMessage: (cb: (m: GuestMessage) => void) => (w.onmessage = (e) => cb(e.data as GuestMessage)),
    onError: (cb: (e: Error) => void) => (w.onerror = (e) => cb(new Error(e.message || 'the guest worker failed to start'))),
    terminate: () => w.terminate(),
  };
}

/**
 * Makes `box.run` use a Web Worker: the page stays responsive, output
 * streams back as written, a timeout terminates the worker.
 */
export function installWorkerRunner(store: Store, workerUrl: URL | string = defaultWorkerUrl()): void {
  if (typeof SharedArrayBuffer === 'undefined' || !(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) return;
  store.runner = async (box: Box, wasm: Uint8Array | WebAssembly.Module, opts: RunOptions): Promise<RunResult | null> => {
    if (opts.mounts?.length || opts.extraFds?.length || typeof opts.stdin === 'function') return null;
    return runInGuestWorker(store, box, wasm, opts as RemoteRunOptions, webWorker(workerUrl));
  };
}
