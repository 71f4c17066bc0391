import type { Digest } from '../digest.js';
import type { BoxLimits } from '../overlay/overlay.js';

/** Where a box stands: its image and the persisted snapshot of its upper layer (null: empty). */
export interface BoxRecord {
  image: Digest;
  upper: Digest | null;
  created: string;
  /** Quotas on the box's upper (kept by fork, reset and commit). */
  limits?: BoxLimits;
}

/** The mutable part of a store: tags and boxes, written as one document so a commit flips both at once. */
export interface RefsDoc {
  /** `name:tag` -> image digest. */
  tags: Record<string, Digest>;
  boxes: Record<string, BoxRecord>;
}

export interface BlobProblem {
  digest?: Digest;
  /** The host object that holds it (a pack file, an IndexedDB key). */
  where?: string;
  problem: string;
}

export interface BackendStats {
  blobs: number;
  /** Bytes of blob content stored. */
  bytes: number;
  /** Host files (or records) used, where that means something. */
  files?: number;
}

/**
 * The small storage interface under a store. Blobs are immutable bytes named
 * by their sha256; refs are one small document replaced atomically.
 *
 * Every mutation (`putBlobs`, `writeRefs`, `deleteBlobs`) is made while
 * holding `lock`, so a gc never races a commit. Reads need no lock.
 */
export interface Backend {
  readonly kind: string;
  /** Human-readable location, for messages. */
  readonly location: string;
  /** Runs `fn` holding the store's exclusive lock (across processes where the host has them). Not reentrant. */
  lock<T>(fn: () => Promise<T>): Promise<T>;
  hasBlob(digest: Digest): boolean;
  /** Reads a blob and verifies it against its digest; a mismatch throws an error naming the blob. */
  getBlob(digest: Digest): Promise<Uint8Array>;
  /** Synchronous read for the engine's lazy file reads; same verification. Throws if the host cannot read synchronously. */
  readBlobSync(digest: Digest): Uint8Array;
  /**
   * Optional fast path: copies blobs `run` back to back, from byte `from` of
   * the first, straight into `dest` (which may end inside the last), when
   * every one was already read and checked in this process and has the
   * length `lengths` says. False when it cannot (one not checked yet, not
   * here, another length): the caller then uses readBlobSync.
   */
  readBlobsInto?(run: Digest[], lengths: number[], dest: Uint8Array, from: number): boolean;
  /** Durably stores a batch of blobs (skipping those present). The caller vouches that each digest matches its data. */
  putBlobs(blobs: ReadonlyArray<{ digest: Digest; data: Uint8Array }>): Promise<void>;
  readRefs(): Promise<RefsDoc>;
  /** Atomically replaces the refs document. */
  writeRefs(refs: RefsDoc): Promise<void>;
  listBlobs(): Promise<Array<{ digest: Digest; size: number }>>;
  /** Removes every blob for which `keep` is false; returns what was freed. */
  deleteBlobs(keep: (digest: Digest) => boolean): Promise<{ blobs: number; bytes: number }>;
  /** Reads and verifies every stored blob and the backend's own structures. */
  verify(): Promise<BlobProblem[]>;
  stats(): Promise<BackendStats>;
  close(): Promise<void>;
  /** Backends shared between processes mark a box in use; another process then gets a clear error. */
  leaseBox?(name: string): Promise<() => void>;
  /** Backends that cannot read synchronously (IndexedDB, HTTP) load blobs here so `readBlobSync` can serve them. */
  preload?(digests: Digest[]): Promise<void>;
}

export function emptyRefs(): RefsDoc {
  return { tags: {}, boxes: {} };
}

/** A promise-chain mutex for one process; backends add cross-process locking on top. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }
}
