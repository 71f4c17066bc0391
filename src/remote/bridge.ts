import type { Digest } from '../digest.js';
import { LayerboxError, errnoOf } from '../errno.js';
import type { AsyncJournalLog, Backend, BackendStats, BlobProblem, JournalLog, RefsDoc } from '../store/backend.js';
import { concatBytes, fromUtf8, utf8 } from '../text.js';

/** The two ends of a worker channel (a Web Worker, a worker_threads Worker, or their `self`/`parentPort`). */
export interface Port {
  postMessage(msg: unknown): void;
}

/** Bytes moved per round trip; bigger blobs, reads and appends take several. */
const CAPACITY = 1 << 20;
const IDLE = 0, READY = 1, FAILED = 2;
/**
 * Shared memory of one bridge: control words [state, total, n, message
 * length], an errno word, a float64 (a journal's size) and the data window.
 * One guest thread makes one request at a time, so blobs and journals share it.
 */
const HEAD = 32;

export function createBridgeBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEAD + CAPACITY);
}

/** Puts an error in the window for the guest: its message (cut to the window) and errno (0: none). */
function fail(ctrl: Int32Array, data: Uint8Array, e: unknown): void {
  const msg = utf8(String((e as Error)?.message ?? e)).subarray(0, CAPACITY);
  data.set(msg);
  ctrl[3] = msg.length;
  ctrl[4] = errnoOf(e) ?? 0;
  Atomics.store(ctrl, 0, FAILED);
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
    this.ctrl = new Int32Array(sab, 0, 5);
    this.num = new Float64Array(sab, 24, 1);
    this.data = new Uint8Array(sab, HEAD);
  }
  private num: Float64Array;

  /**
   * One round trip: `out` (at most the window) goes in the window, `msg` to
   * the other side; blocks until it answered. Its error comes back as a
   * LayerboxError with the errno it carried.
   */
  call(msg: object, out?: Uint8Array): { n: number; num: number; data: Uint8Array } {
    if (out) {
      if (out.length > CAPACITY) throw new LayerboxError(`bridge: ${out.length} bytes do not fit its window`);
      this.data.set(out);
    }
    this.ctrl[3] = out?.length ?? 0;
    Atomics.store(this.ctrl, 0, IDLE);
    this.port.postMessage(msg);
    Atomics.wait(this.ctrl, 0, IDLE);
    if (Atomics.load(this.ctrl, 0) === FAILED) {
      const errno = this.ctrl[4]!;
      throw new LayerboxError(fromUtf8(this.data.slice(0, this.ctrl[3])), errno ? { errno } : {});
    }
    return { n: this.ctrl[2]!, num: this.num[0]!, data: this.data };
  }

  read(digest: Digest): Uint8Array {
    let out: Uint8Array | null = null;
    let offset = 0;
    do {
      Atomics.store(this.ctrl, 0, IDLE);
      this.port.postMessage({ t: 'read', digest, offset });
      Atomics.wait(this.ctrl, 0, IDLE);
      if (Atomics.load(this.ctrl, 0) === FAILED) throw new LayerboxError(fromUtf8(this.data.slice(0, this.ctrl[3])), this.ctrl[4] ? { errno: this.ctrl[4] } : {});
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
    this.ctrl = new Int32Array(sab, 0, 5);
    this.data = new Uint8Array(sab, HEAD);
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
      fail(this.ctrl, this.data, e);
    }
    Atomics.notify(this.ctrl, 0);
  }
}

/**
 * A read-only backend over a bridge, with a bounded cache of recent blobs:
 * what a guest worker mounts its box from. The box's journal is the store
 * owner's, written through the bridge (BridgeJournalLog); the owner folds it
 * into the store at the end of the run.
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
  /** The box's journal in the store owner's storage: every call blocks until the owner served it. */
  openJournal(box: string | null): JournalLog {
    return new BridgeJournalLog(this.bridge, box);
  }
}

/** A journal request from a guest worker. `append`/`replace` move their bytes in pieces: `last` ends one. */
export type JournalRequest =
  | { t: 'journal'; op: 'open'; box: string | null }
  | { t: 'journal'; op: 'read'; id: number; offset: number; length: number }
  | { t: 'journal'; op: 'append' | 'replace'; id: number; durable: boolean; last: boolean; abort?: boolean }
  | { t: 'journal'; op: 'remove' | 'close'; id: number };

/**
 * Guest side of a box's journal: a synchronous JournalLog whose bytes live
 * with the store's owner (IndexedDB on a page). Each call posts a request and
 * blocks until the owner answered; its failures come back with their errno
 * (ENOSPC, EDQUOT, EIO), which the guest sees from its fsync or write.
 */
export class BridgeJournalLog implements JournalLog {
  private id: number;
  private bytes: number;
  constructor(private bridge: BlobBridge, box: string | null) {
    const r = bridge.call({ t: 'journal', op: 'open', box });
    this.id = r.n;
    this.bytes = r.num;
  }
  get size(): number {
    return this.bytes;
  }
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes) throw new LayerboxError(`journal read past its end (${offset}+${length} of ${this.bytes})`);
    const out = new Uint8Array(length);
    for (let got = 0; got < length;) {
      const want = Math.min(CAPACITY, length - got);
      const r = this.bridge.call({ t: 'journal', op: 'read', id: this.id, offset: offset + got, length: want });
      if (r.n !== want) throw new LayerboxError(`journal read: got ${r.n} of ${want} bytes`);
      out.set(r.data.subarray(0, want), got);
      got += want;
    }
    return out;
  }
  /** Streams the parts in window-sized pieces, the last one marked; a failure on the way ends the stream there. */
  private send(op: 'append' | 'replace', parts: Iterable<Uint8Array>, durable: boolean): void {
    let held: Uint8Array | null = null;
    let started = false;
    try {
      for (const p of parts)
        for (let at = 0; at < p.length; at += CAPACITY) {
          if (held) {
            try {
              this.bridge.call({ t: 'journal', op, id: this.id, durable, last: false }, held);
            } catch (e) {
              started = false; // the owner failed the write and dropped it
              throw e;
            }
            started = true;
          }
          held = p.subarray(at, Math.min(p.length, at + CAPACITY));
        }
    } catch (e) {
      // The parts themselves failed (a read of this log while compacting): the owner drops what it got.
      if (started) try { this.bridge.call({ t: 'journal', op, id: this.id, durable, last: true, abort: true }); } catch { /* it reports the abort */ }
      throw e;
    }
    this.bytes = this.bridge.call({ t: 'journal', op, id: this.id, durable, last: true }, held ?? new Uint8Array()).num;
  }
  append(parts: readonly Uint8Array[], durable: boolean): void {
    // One buffer: the owner stores what each window piece brings as one segment, and a batch's parts are small.
    this.send('append', [parts.length === 1 ? parts[0]! : concatBytes(parts)], durable);
  }
  replace(parts: Iterable<Uint8Array>): void {
    this.send('replace', parts, true);
  }
  remove(): void {
    this.bytes = this.bridge.call({ t: 'journal', op: 'remove', id: this.id }).num;
  }
  close(): void {
    this.bridge.call({ t: 'journal', op: 'close', id: this.id });
  }
}

/** Parts handed over one at a time: `push` settles once the consumer took the part, so at most one waits. */
class Pipe implements AsyncIterable<Uint8Array> {
  private queue: Array<{ bytes: Uint8Array; taken: () => void }> = [];
  private ended = false;
  private failed: unknown = null;
  private wake: (() => void) | null = null;
  push(bytes: Uint8Array): Promise<void> {
    return new Promise((taken) => {
      this.queue.push({ bytes, taken });
      this.wake?.();
    });
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  abort(e: unknown): void {
    this.failed = e;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.failed) throw this.failed;
      const next = this.queue.shift();
      if (next) {
        next.taken();
        yield next.bytes;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}

/**
 * Store side: serves a guest's BridgeJournalLogs from the backend's
 * asynchronous journals. Only the bytes on their way through are held here
 * (one window's worth, plus the one being stored).
 */
export class JournalServer {
  private logs = new Map<number, AsyncJournalLog>();
  private streams = new Map<number, { pipe: Pipe; done: Promise<void> }>();
  private nextId = 1;
  private ctrl: Int32Array;
  private num: Float64Array;
  private data: Uint8Array;
  constructor(sab: SharedArrayBuffer, private backend: Pick<Backend, 'openJournalAsync' | 'location'>, private allowed: string | null) {
    this.ctrl = new Int32Array(sab, 0, 5);
    this.num = new Float64Array(sab, 24, 1);
    this.data = new Uint8Array(sab, HEAD);
  }

  private log(id: number): AsyncJournalLog {
    const log = this.logs.get(id);
    if (!log) throw new LayerboxError(`bridge: no open journal ${id}`);
    return log;
  }

  async answer(req: JournalRequest): Promise<void> {
    try {
      let n = 0, num = 0;
      switch (req.op) {
        case 'open': {
          // A guest opens its own box's journal or a scratch log, nothing else.
          if (req.box !== null && req.box !== this.allowed) throw new LayerboxError(`bridge: the guest may not open the journal of box ${String(req.box)}`);
          if (!this.backend.openJournalAsync) throw new LayerboxError(`store ${this.backend.location} keeps no box journals for guest workers`);
          const log = await this.backend.openJournalAsync(req.box);
          n = this.nextId++;
          this.logs.set(n, log);
          num = log.size;
          break;
        }
        case 'read': {
          const log = this.log(req.id);
          if (!Number.isSafeInteger(req.length) || req.length < 0 || req.length > CAPACITY) throw new LayerboxError(`bridge: a read of ${req.length} bytes does not fit its window`);
          const bytes = await log.read(req.offset, req.length);
          this.data.set(bytes);
          n = bytes.length;
          break;
        }
        case 'append':
        case 'replace': {
          const log = this.log(req.id);
          const len = this.ctrl[3]!;
          if (!Number.isSafeInteger(len) || len < 0 || len > CAPACITY) throw new LayerboxError('bridge: a piece larger than its window');
          const piece = this.data.slice(0, len);
          let s = this.streams.get(req.id);
          if (!s) {
            const pipe = new Pipe();
            const done = req.op === 'append' ? log.append(pipe, req.durable) : log.replace(pipe);
            done.catch(() => {});
            this.streams.set(req.id, (s = { pipe, done }));
          }
          if (req.abort) {
            this.streams.delete(req.id);
            s.pipe.abort(new LayerboxError('the guest gave up on this write'));
            await s.done.catch(() => {});
            break;
          }
          if (!req.last) {
            // Answered once the piece is taken (the window is then free), or when the write failed.
            try {
              await Promise.race([s.pipe.push(piece), s.done.then(() => { throw new LayerboxError('bridge: the journal write ended early'); })]);
            } catch (e) {
              this.streams.delete(req.id);
              throw e;
            }
            break;
          }
          this.streams.delete(req.id);
          if (piece.length) void s.pipe.push(piece);
          s.pipe.end();
          await s.done;
          num = log.size;
          break;
        }
        case 'remove':
          await this.log(req.id).remove();
          break;
        case 'close': {
          const log = this.log(req.id);
          this.logs.delete(req.id);
          await log.close();
          break;
        }
      }
      this.ctrl[2] = n;
      this.num[0] = num;
      Atomics.store(this.ctrl, 0, READY);
    } catch (e) {
      fail(this.ctrl, this.data, e);
    }
    Atomics.notify(this.ctrl, 0);
  }

  /** At the end of a run: writes cut short are dropped, scratch logs removed. */
  async closeAll(): Promise<void> {
    for (const s of this.streams.values()) s.pipe.abort(new LayerboxError('the run ended'));
    await Promise.all([...this.streams.values()].map((s) => s.done.catch(() => {})));
    this.streams.clear();
    const logs = [...this.logs.values()];
    this.logs.clear();
    for (const log of logs) await log.close().catch(() => {});
  }
}
