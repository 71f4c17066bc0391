import type { Port } from './bridge.js';

/**
 * A streamed stdin between a page and a guest worker: the guest asks for up
 * to `max` bytes and blocks; the page answers with the next bytes of its
 * source (or end of input). Control words: [state, length]; state 0 empty,
 * 1 data, 2 end of input.
 */
const WINDOW = 64 * 1024;

export function createStdinBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(8 + WINDOW);
}

/** Guest side: a blocking source for InputFd. */
export function stdinPuller(sab: SharedArrayBuffer, port: Port): (max: number) => Uint8Array | null {
  const ctrl = new Int32Array(sab, 0, 2);
  const data = new Uint8Array(sab, 8);
  let ended = false;
  return (max) => {
    if (ended) return null;
    Atomics.store(ctrl, 0, 0);
    port.postMessage({ t: 'stdin', max: Math.min(max, WINDOW) });
    Atomics.wait(ctrl, 0, 0);
    if (Atomics.load(ctrl, 0) === 2) {
      ended = true;
      return null;
    }
    return data.slice(0, ctrl[1]);
  };
}

/** Page side: answers pulls from an async source of byte chunks. */
export function stdinPusher(sab: SharedArrayBuffer, source: AsyncIterable<Uint8Array>): (max: number) => Promise<void> {
  const ctrl = new Int32Array(sab, 0, 2);
  const data = new Uint8Array(sab, 8);
  const it = source[Symbol.asyncIterator]();
  let pending: Uint8Array | null = null;
  return async (max) => {
    while (!pending || !pending.length) {
      const r = await it.next();
      if (r.done) {
        Atomics.store(ctrl, 0, 2);
        Atomics.notify(ctrl, 0);
        return;
      }
      pending = r.value;
    }
    const n = Math.min(max, pending.length);
    data.set(pending.subarray(0, n));
    pending = pending.subarray(n);
    ctrl[1] = n;
    Atomics.store(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
  };
}
