import { type Digest, isDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { checkBoxName, parseTag } from '../image.js';
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
  /**
   * Bytes of blobs that boxes left unreferenced since the last gc (superseded
   * uppers, reset or removed boxes): past a threshold the store collects
   * them itself, so rewriting files never grows a store without bound.
   */
  garbage?: number;
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
  /** Optional: as putBlobs, reading each blob's bytes only when it is written (a checkpoint's chunks, streamed from a journal). */
  putBlobsLazy?(blobs: ReadonlyArray<LazyBlob>): Promise<void>;
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
  /**
   * A box's journal with asynchronous I/O (`null`: a scratch log, removed on
   * close): what a page serves a guest worker's synchronous log from (see
   * remote/bridge.ts), on hosts whose storage is asynchronous (IndexedDB).
   */
  openJournalAsync?(box: string | null): Promise<AsyncJournalLog>;
  /**
   * A box's journal for the process that runs it, with synchronous I/O (the
   * guest is synchronous); `null`: a scratch log for an ephemeral box, gone
   * on close. Absent where the host cannot write synchronously (IndexedDB
   * on a page): such boxes keep their changes in memory until a flush.
   */
  openJournal?(box: string | null): JournalLog;
  /** A box's journal as the store side reads it at a checkpoint (may be asynchronous); null when there is none. */
  readJournal?(box: string): Promise<JournalSource | null>;
  /**
   * Optional: makes a box's journal itself a sealed pack holding `chunks`
   * (where their bytes are in it), durably, leaving the journal in place
   * (the caller removes it once the refs point past it). False when it cannot.
   */
  sealJournal?(box: string, chunks: ReadonlyArray<{ digest: Digest; offset: number; length: number }>): Promise<boolean>;
}

/** A blob to store whose bytes are read when they are written. */
export interface LazyBlob {
  digest: Digest;
  length: number;
  read(): Uint8Array;
}

/** A journal as a checkpoint reads it. */
export interface JournalSource {
  /** Bytes in the log; 0 when there is none. */
  readonly size: number;
  read(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
  /** Removes the log (after a checkpoint folded it into the store). */
  remove(): void | Promise<void>;
}

/**
 * A box's journal as bytes: appended at its end, read back anywhere.
 * Implementations keep no state of their own beyond the bytes: the format is
 * store/journal.ts's.
 */
export interface JournalLog extends JournalSource {
  read(offset: number, length: number): Uint8Array;
  /**
   * Writes `parts`, in order, at offset `size`. With `durable`, returns only
   * once they and everything before them are on stable storage. On failure it
   * throws (a host error carrying its errno code: ENOSPC, EDQUOT, EIO) and
   * `size` keeps its old value: the next append overwrites what a failed one left.
   */
  append(parts: readonly Uint8Array[], durable: boolean): void;
  /** Atomically and durably replaces the whole log with `parts` (streamed: they may be large). */
  replace(parts: Iterable<Uint8Array>): void;
  remove(): void;
  close(): void;
}

/**
 * A box's journal as `JournalLog` says, with asynchronous I/O. Appended and
 * replacing bytes come as parts pulled one at a time (each may be produced
 * while the one before is stored), so a large append needs no buffer of its size.
 */
export interface AsyncJournalLog {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Appends the parts as one: on failure (an error carrying its errno) nothing of them counts and `size` keeps its value. */
  append(parts: AsyncIterable<Uint8Array>, durable: boolean): Promise<void>;
  /** Atomically and durably replaces the whole log with the parts. */
  replace(parts: AsyncIterable<Uint8Array>): Promise<void>;
  remove(): Promise<void>;
  close(): Promise<void>;
}

export function emptyRefs(): RefsDoc {
  return { tags: {}, boxes: {} };
}

/** Upper bounds of box limits: beyond them a limit is a mistake or an attack, not a quota. */
export const LIMIT_BOUNDS: Readonly<Required<BoxLimits>> = { maxUpperBytes: 2 ** 50, maxFiles: 2 ** 32, maxFileBytes: 2 ** 52 };

/** Validates box limits: each given one a non-negative safe integer within LIMIT_BOUNDS; undefined when none is set. */
export function checkLimits(limits: unknown, where = 'box limit'): BoxLimits | undefined {
  if (limits === undefined) return undefined;
  if (!isRecord(limits)) throw new LayerboxError(`${where}s must be an object, got ${show(limits)}`, { code: 'INVALID' });
  const out: BoxLimits = {};
  for (const key of Object.keys(limits)) if (!(key in LIMIT_BOUNDS)) throw new LayerboxError(`unknown ${where} ${show(key)}`, { code: 'INVALID' });
  for (const key of ['maxUpperBytes', 'maxFiles', 'maxFileBytes'] as const) {
    const v = limits[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > LIMIT_BOUNDS[key]) throw new LayerboxError(`${where} ${key} must be an integer from 0 to ${LIMIT_BOUNDS[key]}, got ${show(v)}`, { code: 'INVALID' });
    out[key] = v;
  }
  return Object.keys(out).length ? out : undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A value for a message, cut short: stored input may be anything, of any size. */
const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/**
 * Checks one box record as read from storage or a bundle (each field of the
 * right type, limits in bounds) and returns a clean copy with only its
 * known fields.
 */
export function checkBoxRecord(r: unknown, where: string): BoxRecord {
  if (!isRecord(r)) throw new LayerboxError(`${where} is not a box record (got ${show(r)})`, { code: 'CORRUPT' });
  if (!isDigest(r.image)) throw new LayerboxError(`${where} has no valid image digest (got ${show(r.image)})`, { code: 'CORRUPT' });
  if (r.upper !== null && !isDigest(r.upper)) throw new LayerboxError(`${where} has no valid upper (a digest or null; got ${show(r.upper)})`, { code: 'CORRUPT' });
  if (typeof r.created !== 'string') throw new LayerboxError(`${where} has no creation time (got ${show(r.created)})`, { code: 'CORRUPT' });
  const limits = checkLimits(r.limits, `${where}: limit`);
  return { image: r.image, upper: r.upper, created: r.created, ...(limits ? { limits } : {}) };
}

/** `map[key]` if `map` has it as its own entry: a box named `constructor` is not Object's. */
export function own<T>(map: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

/**
 * Checks a refs document as read from storage: tags map to digests, boxes
 * to valid records under valid names. Returns a clean copy with only the
 * known fields.
 */
export function checkRefs(doc: { tags?: unknown; boxes?: unknown; garbage?: unknown }, where: string): RefsDoc {
  if (!isRecord(doc.tags) || !isRecord(doc.boxes)) throw new LayerboxError(`${where} lacks its tags or boxes (or they are not objects)`, { code: 'CORRUPT' });
  const refs: RefsDoc = { tags: {}, boxes: {} };
  const g = (doc as { garbage?: unknown }).garbage;
  if (g !== undefined) {
    if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 0) throw new LayerboxError(`${where}: its garbage count is not a byte count (got ${show(g)})`, { code: 'CORRUPT' });
    refs.garbage = g;
  }
  for (const [t, d] of Object.entries(doc.tags)) {
    try {
      parseTag(t);
    } catch (e) {
      throw new LayerboxError(`${where}: tag ${show(t)}: ${(e as Error).message}`, { code: 'CORRUPT' });
    }
    if (!isDigest(d)) throw new LayerboxError(`${where}: tag ${show(t)} does not name an image digest (got ${show(d)})`, { code: 'CORRUPT' });
    refs.tags[t] = d;
  }
  for (const [name, r] of Object.entries(doc.boxes)) {
    try {
      checkBoxName(name);
    } catch (e) {
      throw new LayerboxError(`${where}: ${(e as Error).message}`, { code: 'CORRUPT' });
    }
    refs.boxes[name] = checkBoxRecord(r, `${where}: box ${name}`);
  }
  return refs;
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
