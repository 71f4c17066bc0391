import type { Digest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import type { Backend, BackendStats, BlobProblem, JournalLog, RefsDoc } from '../store/backend.js';
import { MemoryJournalLog } from '../store/journal.js';
import { fromUtf8, utf8 } from '../text.js';

/** The two ends of a worker channel (a Web Worker, a worker_threads Worker, or their `self`/`parentPort`). */
export interface Port {
  postMessage(msg: unknown): void;
}

/** Bytes moved per round trip; bigger blobs take several. */
const CAPACITY = 1 << 20;
const IDLE = 0, READY = 1, FAILED = 2;

/** Shared memory of one bridge: a control word block and a data window. */
export function createBridgeBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(16 + CAPACITY);
}

/**
 * Guest side: synchronous blob reads for a worker whose guest cannot wait
 * for promises. It posts a request and blocks on Atomics until the other
 * side (which owns the real, asynchronous store) has filled the window.
 */
export class BlobBridge {
  private ctrl: Int32Array;
  private data: Uint8Array;
  constructor(sab: SharedArrayBuffer, private port: Port) {
    this.ctrl = new Int32Array(sab, 0, 4);
    this.data = new Uint8Array(sab, 16);
  }
  read(digest: Digest): Uint8Array {
    let out: Uint8Array | null = null;
    let offset = 0;
    do {
      Atomics.store(this.ctrl, 0, IDLE);
      this.port.postMessage({ t: 'read', digest, offset });
      Atomics.wait(this.ctrl, 0, IDLE);
      if (Atomics.load(this.ctrl, 0) === FAILED) throw new LayerboxError(fromUtf8(this.data.slice(0, this.ctrl[3])));
      const total = this.ctrl[1]!, n = this.ctrl[2]!;
      out ??= new Uint8Array(total);
      out.set(this.data.subarray(0, n), offset);
      offset += n;
    } while (offset < out.length);
    return out;
  }
}

/** Store side: answers a BlobBridge's read requests from a real backend. */
export class BlobServer {
  private ctrl: Int32Array;
  private data: Uint8Array;
  private last: { digest: Digest; bytes: Uint8Array } | null = null;
  /** Bytes handed to the guest, for tests and progress. */
  served = 0;
  constructor(sab: SharedArrayBuffer, private backend: Pick<Backend, 'getBlob'>) {
    this.ctrl = new Int32Array(sab, 0, 4);
    this.data = new Uint8Array(sab, 16);
  }
  async answer(req: { digest: Digest; offset: number }): Promise<void> {
    try {
      if (this.last?.digest !== req.digest) this.last = { digest: req.digest, bytes: await this.backend.getBlob(req.digest) };
      const b = this.last.bytes;
      const n = Math.min(CAPACITY, b.length - req.offset);
      this.data.set(b.subarray(req.offset, req.offset + n));
      this.ctrl[1] = b.length;
      this.ctrl[2] = n;
      this.served += n;
      Atomics.store(this.ctrl, 0, READY);
    } catch (e) {
      const msg = utf8(String((e as Error)?.message ?? e)).subarray(0, CAPACITY);
      this.data.set(msg);
      this.ctrl[3] = msg.length;
      Atomics.store(this.ctrl, 0, FAILED);
    }
    Atomics.notify(this.ctrl, 0);
  }
}

/**
 * A read-only backend over a bridge, with a bounded cache of recent blobs:
 * what a guest worker mounts its box from. Writes go back to the owner of
 * the store as snapshots (see remote/guest.ts), never through here.
 */
export class BridgeBackend implements Backend {
  readonly kind = 'bridge';
  readonly location = 'bridge:';
  private cache = new Map<Digest, Uint8Array>();
  private cached = 0;
  constructor(private bridge: BlobBridge, private maxBytes = 32 * 1024 * 1024) {}

  readBlobSync(digest: Digest): Uint8Array {
    const hit = this.cache.get(digest);
    if (hit) {
      this.cache.delete(digest);
      this.cache.set(digest, hit);
      return hit;
    }
    const b = this.bridge.read(digest);
    this.cache.set(digest, b);
    this.cached += b.length;
    for (const [d, v] of this.cache) {
      if (this.cached <= this.maxBytes) break;
      this.cache.delete(d);
      this.cached -= v.length;
    }
    return b;
  }
  async getBlob(digest: Digest): Promise<Uint8Array> {
    return this.readBlobSync(digest);
  }
  hasBlob(_digest: Digest): boolean {
    return true;
  }
  private readOnly(): never {
    throw new LayerboxError('a guest worker reads its box through a bridge and cannot write the store directly', { code: 'UNSUPPORTED' });
  }
  lock<T>(_fn: () => Promise<T>): Promise<T> {
    return this.readOnly();
  }
  async putBlobs(): Promise<void> {
    this.readOnly();
  }
  async readRefs(): Promise<RefsDoc> {
    return this.readOnly();
  }
  async writeRefs(): Promise<void> {
    this.readOnly();
  }
  async listBlobs(): Promise<Array<{ digest: Digest; size: number }>> {
    return [];
  }
  async deleteBlobs(): Promise<{ blobs: number; bytes: number }> {
    return this.readOnly();
  }
  async verify(): Promise<BlobProblem[]> {
    return [];
  }
  async stats(): Promise<BackendStats> {
    return { blobs: this.cache.size, bytes: this.cached };
  }
  async close(): Promise<void> {}
  /** The guest's journal stays in the worker until exit, when the store's side folds it in. */
  openJournal(): JournalLog {
    return new MemoryJournalLog();
  }
}
