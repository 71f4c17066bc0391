/**
 * A store in the browser's IndexedDB.
 *
 * One database per store, `layerbox:<name>`, with two object stores:
 *
 * - `blobs`: digest string -> Uint8Array (the blob's bytes);
 * - `meta`: `store` -> `{ magic: 'layerbox-idb', version: 1 }` (written in the
 *   same upgrade transaction that creates the object stores, so a database that
 *   has it is a complete store), and `refs` -> `{ magic: 'layerbox-refs',
 *   version: 1, tags, boxes }` (the refs document, as in a directory store's
 *   refs.json).
 *
 * - `journal`: [box, generation, offset] -> Uint8Array, a box's journal as
 *   segments of at most 1 MiB, and `journalHeads`: box -> `{ gen, size }`,
 *   which segments count. Added by a version upgrade that leaves the other
 *   object stores as they are, so a store made before journals existed opens
 *   (and older code still reads this one). An append writes its segments
 *   past `size`, the last one in the same transaction as the new head: what
 *   a failed or cut append left is never read and goes with the next append.
 *   A replace writes a new generation and flips the head to it.
 *
 * Simple reads and single-store writes go through `idb-keyval` helpers over
 * this backend's own connection; `commitBatch`, which spans both object
 * stores, uses a raw transaction. Every write is one IndexedDB transaction:
 * all of it lands or none of it does. A `QuotaExceededError` is reported as a
 * LayerboxError saying so, never swallowed.
 *
 * IndexedDB is asynchronous only, so `readBlobSync` is served from an
 * in-memory LRU cache (by bytes) of the blobs read or written in this session;
 * `preload` fills it. `hasBlob` answers from a set of digests read at open and
 * kept up to date by this instance's writes (and re-read whenever the lock is
 * taken, to see other tabs' changes).
 *
 * Host objects are passed in (`indexedDB`, `locks`, `storage`) so tests can
 * use fake-indexeddb; this file uses no Node-only API.
 */
import { delMany, get, getMany, keys, set, setMany, type UseStore } from 'idb-keyval';
import { type Digest, digestOf, isDigest, toHex } from '../../src/digest.js';
import { Errno, LayerboxError } from '../../src/errno.js';
import { type AsyncJournalLog, type Backend, type BackendStats, type BlobProblem, type JournalSource, type RefsDoc, Mutex, checkRefs, emptyRefs } from '../../src/store/backend.js';

const DB_PREFIX = 'layerbox:';
const STORE_MAGIC = 'layerbox-idb';
const REFS_MAGIC = 'layerbox-refs';
const FORMAT_VERSION = 1;
const BLOBS = 'blobs';
const META = 'meta';
const JOURNAL = 'journal';
const HEADS = 'journalHeads';
/** Largest journal segment: bounded records, bounded reads. */
const SEGMENT = 1 << 20;
/** Scratch logs of ephemeral boxes are named so no box name can be one (box names have no NUL). */
const SCRATCH = '\u0000scratch:';
const STORE_KEY = 'store';
const REFS_KEY = 'refs';
/** Default size of the in-memory blob cache behind `readBlobSync`. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** Blobs fetched per read transaction by `preload` and `verify`. */
const FETCH_BATCH = 32;
/** How long `openIdbBackend` waits for `navigator.storage.persist()` before going on without its answer. */
const PERSIST_WAIT_MS = 200;

/** The part of the Web Locks `LockManager` used here (`navigator.locks` is one). */
export interface LockManagerLike {
  /** With `ifAvailable`, the callback gets null when another holds the lock. */
  request<T>(name: string, options: { mode: 'exclusive'; ifAvailable?: boolean }, callback: (lock?: unknown) => Promise<T>): Promise<T>;
}

/** The part of `StorageManager` used here (`navigator.storage` is one). */
export interface StorageManagerLike {
  persist?(): Promise<boolean>;
  estimate?(): Promise<{ usage?: number; quota?: number }>;
}

export interface IdbBackendOptions {
  /** The IndexedDB factory; defaults to `globalThis.indexedDB`. */
  indexedDB?: IDBFactory;
  /** Cross-tab lock manager; defaults to `navigator.locks` where it exists. `null`: use only an in-process mutex. */
  locks?: LockManagerLike | null;
  /** Asked once at open for persistent storage; defaults to `navigator.storage`. `null`: do not ask. */
  storage?: StorageManagerLike | null;
  /** Bytes of blobs kept in memory for `readBlobSync` (default 64 MiB). */
  cacheBytes?: number;
}

interface JournalHead { gen: number; size: number }

type BlobIn = { digest: Digest; data: Uint8Array };

interface RefsRecord { magic: string; version: number; tags: RefsDoc['tags']; boxes: RefsDoc['boxes'] }

const noop = () => {};

function errName(e: unknown): string | undefined {
  const n = (e as { name?: unknown } | null)?.name;
  return typeof n === 'string' ? n : undefined;
}

function describe(e: unknown): string {
  if (e === null || e === undefined) return 'the transaction was aborted';
  const m = (e as { message?: unknown }).message;
  const n = errName(e);
  if (typeof m === 'string') return n && n !== 'Error' ? `${n}: ${m}` : m;
  return String(e);
}

/** True for the error a browser gives when the origin's storage quota is exhausted. */
export function isQuotaError(e: unknown): boolean {
  const n = errName(e);
  return n === 'QuotaExceededError' || n === 'NS_ERROR_DOM_QUOTA_REACHED';
}

function withCause(err: LayerboxError, cause: unknown): LayerboxError {
  if (cause !== undefined && cause !== null) Object.defineProperty(err, 'cause', { value: cause, configurable: true, writable: true });
  return err;
}

/** Stored values are Uint8Array; accept any binary the structured clone may hand back, refuse anything else. */
function asBytes(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return undefined;
}

/** sha256 with WebCrypto; the portable JS hasher where `crypto.subtle` is missing (insecure contexts). */
async function sha256Digest(data: Uint8Array): Promise<Digest> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (!subtle) return digestOf(data);
  const bytes = data.buffer instanceof ArrayBuffer ? (data as Uint8Array<ArrayBuffer>) : data.slice();
  return `sha256:${toHex(new Uint8Array(await subtle.digest('SHA-256', bytes)))}`;
}

/**
 * Settles when `tx` finishes: resolves on `complete`, rejects on `abort` with
 * the most telling error (the failed request's, else the transaction's: a
 * quota failure at commit time is only on the transaction).
 */
function txDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    let first: unknown;
    tx.addEventListener('error', (ev) => { first ??= (ev.target as IDBRequest | null)?.error ?? undefined; });
    tx.addEventListener('complete', () => resolve());
    tx.addEventListener('abort', () => reject(first ?? tx.error ?? new DOMException('the transaction was aborted', 'AbortError')));
  });
}

function abortQuietly(tx: IDBTransaction): void {
  try { tx.abort(); } catch { /* already finished */ }
}

/** Normalises refs to plain JSON (what the directory store writes), with magic and version. */
function refsRecord(refs: RefsDoc): { record: RefsRecord; bytes: number } {
  const text = JSON.stringify({ magic: REFS_MAGIC, version: FORMAT_VERSION, tags: refs.tags, boxes: refs.boxes, ...(refs.garbage ? { garbage: refs.garbage } : {}) });
  return { record: JSON.parse(text) as RefsRecord, bytes: new TextEncoder().encode(text).length };
}

/** A least-recently-used map of blobs bounded by their total bytes. */
class BlobCache {
  private map = new Map<Digest, Uint8Array>();
  bytes = 0;
  constructor(readonly maxBytes: number) {}
  has(d: Digest): boolean { return this.map.has(d); }
  /** Returns the blob and marks it most recently used. */
  get(d: Digest): Uint8Array | undefined {
    const v = this.map.get(d);
    if (v !== undefined) { this.map.delete(d); this.map.set(d, v); }
    return v;
  }
  /** Adds a blob, evicting the least recently used ones; a blob larger than the whole cache is not kept. */
  put(d: Digest, v: Uint8Array): void {
    this.delete(d);
    if (v.length > this.maxBytes) return;
    this.map.set(d, v);
    this.bytes += v.length;
    for (const [old, ov] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(old);
      this.bytes -= ov.length;
    }
  }
  delete(d: Digest): void {
    const v = this.map.get(d);
    if (v !== undefined) { this.map.delete(d); this.bytes -= v.length; }
  }
  keys(): IterableIterator<Digest> { return this.map.keys(); }
}

/**
 * A store in IndexedDB (see the file comment for the layout). Use
 * `openIdbBackend`, which creates or checks the database.
 */
export class IdbBackend implements Backend {
  readonly kind = 'indexeddb';
  readonly location: string;
  /** Whether the browser granted persistent storage at open; undefined when unknown (no API, refused to answer, or not answered yet). */
  persisted: boolean | undefined = undefined;
  private digests: Set<Digest>;
  /** Sizes learned from writes and reads; `listBlobs` scans for the rest. */
  private sizes = new Map<Digest, number>();
  private cache: BlobCache;
  private mutex = new Mutex();
  private locks: LockManagerLike | null;
  private closedBecause: string | null = null;
  private blobStore: UseStore;
  private metaStore: UseStore;

  private storage: StorageManagerLike | null;

  constructor(readonly name: string, private db: IDBDatabase, digests: Iterable<Digest>, opts: Pick<IdbBackendOptions, 'locks' | 'cacheBytes' | 'storage'> = {}) {
    this.location = `indexeddb:${DB_PREFIX}${name}`;
    this.digests = new Set(digests);
    const cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (!(cacheBytes >= 0)) throw new LayerboxError(`cacheBytes must be a number of bytes >= 0, not ${cacheBytes}`);
    this.cache = new BlobCache(cacheBytes);
    const nav = (globalThis as { navigator?: { locks?: unknown } }).navigator;
    this.locks = opts.locks === undefined ? ((nav?.locks as LockManagerLike | undefined) ?? null) : opts.locks;
    this.storage = opts.storage === undefined ? ((nav as { storage?: StorageManagerLike } | undefined)?.storage ?? null) : opts.storage;
    this.blobStore = this.useStore(BLOBS);
    this.metaStore = this.useStore(META);
    // Let another tab upgrade or delete the database instead of blocking it; this instance then refuses to work.
    db.onversionchange = () => { db.close(); this.closedBecause ??= 'another page upgraded or deleted the database'; };
    db.onclose = () => { this.closedBecause ??= 'the browser closed the database connection'; };
  }

  /** Bytes the `readBlobSync` cache may hold, and holds now. */
  get cacheStats(): { maxBytes: number; bytes: number } {
    return { maxBytes: this.cache.maxBytes, bytes: this.cache.bytes };
  }

  private conn(): IDBDatabase {
    if (this.closedBecause !== null) throw new LayerboxError(`store ${this.location} is closed (${this.closedBecause})`);
    return this.db;
  }

  /**
   * An idb-keyval `UseStore` over this backend's own connection (idb-keyval's
   * `createStore` would open a second connection through the global
   * `indexedDB`, which `close` could not close). A callback that throws aborts
   * the transaction, so a half-queued batch never commits; a readwrite call
   * settles only once its transaction has committed or aborted.
   */
  private useStore(storeName: string): UseStore {
    return <T>(mode: IDBTransactionMode, callback: (store: IDBObjectStore) => T | PromiseLike<T>): Promise<T> => {
      let tx: IDBTransaction;
      try { tx = this.conn().transaction(storeName, mode); } catch (e) { return Promise.reject(e); }
      const finished = txDone(tx);
      let result: Promise<T>;
      try { result = Promise.resolve(callback(tx.objectStore(storeName))); } catch (e) {
        abortQuietly(tx);
        finished.catch(noop);
        return Promise.reject(e);
      }
      if (mode !== 'readwrite') { finished.catch(noop); return result; }
      result.catch(noop);
      return finished.then(() => result);
    };
  }

  private async reading<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try { return await fn(); } catch (e) {
      if (e instanceof LayerboxError) throw e;
      throw withCause(new LayerboxError(`reading ${what} from ${this.location} failed: ${describe(e)}`), e);
    }
  }

  /** Runs one write transaction; a quota failure becomes a LayerboxError that says so and how big the write was. */
  private async writing<T>(what: string, bytes: number, fn: () => Promise<T>): Promise<T> {
    try { return await fn(); } catch (e) {
      if (isQuotaError(e)) {
        throw withCause(new LayerboxError(`the browser's storage quota is full: IndexedDB refused to store ${what} (${bytes} bytes) in ${this.location}. ` +
          'The transaction was aborted and nothing of it was written. Free space (remove boxes or images, then gc, or clear other site data) ' +
          'or ask the browser for persistent storage.', { errno: Errno.DQUOT }), e);
      }
      if (e instanceof LayerboxError) throw e;
      throw withCause(new LayerboxError(`writing ${what} (${bytes} bytes) to ${this.location} failed: ${describe(e)}; nothing of it was written`), e);
    }
  }

  /** The blobs of a batch not stored yet, each once, as private copies (a view into a larger buffer would store all of it). */
  private freshOf(blobs: ReadonlyArray<BlobIn>): { fresh: Map<Digest, Uint8Array>; bytes: number } {
    const fresh = new Map<Digest, Uint8Array>();
    let bytes = 0;
    for (const { digest, data } of blobs) {
      if (this.digests.has(digest) || fresh.has(digest)) continue;
      fresh.set(digest, data.slice());
      bytes += data.length;
    }
    return { fresh, bytes };
  }

  private remember(fresh: Map<Digest, Uint8Array>): void {
    for (const [d, data] of fresh) {
      this.digests.add(d);
      this.sizes.set(d, data.length);
      this.cache.put(d, data);
    }
  }

  private forgetBlob(d: Digest): void {
    this.digests.delete(d);
    this.sizes.delete(d);
    this.cache.delete(d);
  }

  /** Re-reads the digests in `blobs` (other tabs may have added or removed some). */
  private async refresh(): Promise<Digest[]> {
    const all = await this.reading('the blob list', () => keys<IDBValidKey>(this.blobStore));
    const now = new Set(all.filter(isDigest));
    for (const d of this.digests) if (!now.has(d)) this.forgetBlob(d);
    for (const d of [...this.cache.keys()]) if (!now.has(d)) this.cache.delete(d);
    this.digests = now;
    return [...now];
  }

  /**
   * Runs `fn` holding the store's exclusive lock: the Web Lock
   * `layerbox:<name>` (shared by every tab and worker of the origin) where
   * there is a lock manager, else an in-process mutex. On entry the digest
   * set is re-read so `hasBlob` sees other tabs' commits and gcs.
   */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => { await this.refresh(); return fn(); };
    if (this.locks) return this.locks.request(`${DB_PREFIX}${this.name}`, { mode: 'exclusive' }, run);
    return this.mutex.run(run);
  }

  hasBlob(digest: Digest): boolean {
    return this.digests.has(digest);
  }

  /** Checks a value read from `blobs` against its digest; returns its bytes or throws naming the blob. */
  private async checked(digest: Digest, value: unknown): Promise<Uint8Array> {
    if (value === undefined) {
      this.forgetBlob(digest);
      throw new LayerboxError(`blob ${digest} is missing from the store ${this.location}`);
    }
    const data = asBytes(value);
    if (!data) throw new LayerboxError(`blob ${digest} is corrupt: its IndexedDB record is not bytes (in ${this.location}, object store ${BLOBS})`);
    if ((await sha256Digest(data)) !== digest) {
      this.cache.delete(digest);
      throw new LayerboxError(`blob ${digest} is corrupt: its content does not match its digest (in ${this.location}, object store ${BLOBS})`);
    }
    this.digests.add(digest);
    this.sizes.set(digest, data.length);
    this.cache.put(digest, data);
    return data;
  }

  /** Reads the blob from IndexedDB, verifies its sha256 (WebCrypto) and keeps it in the `readBlobSync` cache. Callers must not change the bytes. */
  async getBlob(digest: Digest): Promise<Uint8Array> {
    const value = await this.reading(`blob ${digest}`, () => get<unknown>(digest, this.blobStore));
    return this.checked(digest, value);
  }

  /**
   * IndexedDB cannot be read synchronously: this serves blobs read (verified)
   * or written in this session from the in-memory cache, and otherwise throws
   * a LayerboxError saying the blob must be loaded first (`preload`).
   */
  readBlobSync(digest: Digest): Uint8Array {
    const hit = this.cache.get(digest);
    if (hit !== undefined) return hit;
    if (!this.digests.has(digest)) throw new LayerboxError(`blob ${digest} is missing from the store ${this.location}`);
    throw new LayerboxError(`blob ${digest} is not loaded: ${this.location} cannot be read synchronously, so the blob must be loaded first ` +
      `(await preload([...digests]) or getBlob); the in-memory cache holds ${this.cache.bytes} of ${this.cache.maxBytes} bytes`);
  }

  /**
   * Loads blobs into the `readBlobSync` cache, verifying each. Throws if one
   * is missing or corrupt, or if together they do not fit in the cache.
   */
  async preload(digests: Digest[]): Promise<void> {
    const want = [...new Set(digests)];
    const todo = want.filter((d) => this.cache.get(d) === undefined);
    for (let i = 0; i < todo.length; i += FETCH_BATCH) {
      const batch = todo.slice(i, i + FETCH_BATCH);
      const values = await this.reading(`${batch.length} blobs`, () => getMany<unknown>(batch, this.blobStore));
      for (let j = 0; j < batch.length; j++) await this.checked(batch[j]!, values[j]);
    }
    const lost = want.filter((d) => !this.cache.has(d));
    if (lost.length) {
      const total = want.reduce((n, d) => n + (this.sizes.get(d) ?? 0), 0);
      throw new LayerboxError(`cannot preload ${want.length} blobs (${total} bytes) from ${this.location}: the in-memory cache holds ${this.cache.maxBytes} bytes, ` +
        `so ${lost.length} of them (e.g. ${lost[0]}) did not stay loaded; open the store with a larger cacheBytes`);
    }
  }

  /** Stores the batch's new blobs in ONE readwrite transaction: all of them or, on any failure (quota), none. */
  async putBlobs(blobs: ReadonlyArray<BlobIn>): Promise<void> {
    const { fresh, bytes } = this.freshOf(blobs);
    if (!fresh.size) return;
    await this.writing(`a batch of ${fresh.size} blob${fresh.size === 1 ? '' : 's'}`, bytes, () => setMany([...fresh], this.blobStore));
    this.remember(fresh);
  }

  async readRefs(): Promise<RefsDoc> {
    const doc = await this.reading('the refs record', () => get<unknown>(REFS_KEY, this.metaStore));
    if (doc === undefined) return emptyRefs();
    const where = `the refs record of ${this.location}`;
    const d = doc as Partial<RefsRecord> | null;
    if (typeof d !== 'object' || d === null || d.magic !== REFS_MAGIC) throw new LayerboxError(`${where} is not a layerbox refs document (bad magic)`);
    if (d.version !== FORMAT_VERSION) throw new LayerboxError(`${where} has unknown version ${JSON.stringify(d.version)} (this layerbox reads version ${FORMAT_VERSION})`);
    return checkRefs(d, where); // a checked copy: the caller's own
  }

  /** Replaces the refs record (one transaction). */
  async writeRefs(refs: RefsDoc): Promise<void> {
    const { record, bytes } = refsRecord(refs);
    await this.writing('the refs document', bytes, () => set(REFS_KEY, record, this.metaStore));
  }

  /**
   * Writes a batch of blobs AND the refs document in one transaction over
   * both object stores, refs last: a commit either lands whole (its blobs and
   * the pointer to them) or not at all, even if the tab dies mid-way. The
   * Store does not use it yet (it calls `putBlobs` then `writeRefs`, which is
   * also safe: blobs before the pointer, an interrupted commit only leaves
   * unreferenced blobs for gc); it is here for a Store that wants one step.
   */
  async commitBatch(blobs: ReadonlyArray<BlobIn>, refs: RefsDoc): Promise<void> {
    const { fresh, bytes } = this.freshOf(blobs);
    const { record, bytes: refsBytes } = refsRecord(refs);
    await this.writing(`a commit of ${fresh.size} blob${fresh.size === 1 ? '' : 's'} and the refs document`, bytes + refsBytes, () => {
      const tx = this.conn().transaction([BLOBS, META], 'readwrite');
      const done = txDone(tx);
      try {
        const store = tx.objectStore(BLOBS);
        for (const [d, data] of fresh) store.put(data, d);
        tx.objectStore(META).put(record, REFS_KEY); // the pointer flips last
      } catch (e) {
        abortQuietly(tx);
        done.catch(noop);
        throw e;
      }
      return done;
    });
    this.remember(fresh);
  }

  /** Every blob with its size. Sizes not learned in this session are read with one cursor over `blobs`. */
  async listBlobs(): Promise<Array<{ digest: Digest; size: number }>> {
    const all = await this.refresh();
    if (all.some((d) => !this.sizes.has(d))) {
      const scanned = await this.reading('the blob sizes', () => this.scanSizes());
      for (const [d, n] of scanned) this.sizes.set(d, n);
    }
    return all.filter((d) => this.sizes.has(d)).map((digest) => ({ digest, size: this.sizes.get(digest)! }));
  }

  private scanSizes(): Promise<Map<Digest, number>> {
    const tx = this.conn().transaction(BLOBS, 'readonly');
    const out = new Map<Digest, number>();
    const req = tx.objectStore(BLOBS).openCursor();
    req.onsuccess = () => {
      const c = req.result;
      if (!c) return;
      if (isDigest(c.key)) out.set(c.key, asBytes(c.value)?.length ?? 0);
      c.continue();
    };
    return txDone(tx).then(() => out);
  }

  /** Removes every blob for which `keep` is false, in one transaction. Call it holding `lock`. */
  async deleteBlobs(keep: (digest: Digest) => boolean): Promise<{ blobs: number; bytes: number }> {
    const all = await this.refresh();
    const dead = all.filter((d) => !keep(d));
    if (!dead.length) return { blobs: 0, bytes: 0 };
    const unknown = dead.filter((d) => !this.sizes.has(d));
    for (let i = 0; i < unknown.length; i += FETCH_BATCH) {
      const batch = unknown.slice(i, i + FETCH_BATCH);
      const values = await this.reading(`${batch.length} blobs`, () => getMany<unknown>(batch, this.blobStore));
      batch.forEach((d, j) => this.sizes.set(d, asBytes(values[j])?.length ?? 0));
    }
    const bytes = dead.reduce((n, d) => n + this.sizes.get(d)!, 0);
    await this.writing(`the removal of ${dead.length} blobs`, bytes, () => delMany(dead, this.blobStore));
    for (const d of dead) this.forgetBlob(d);
    return { blobs: dead.length, bytes };
  }

  /** Reads and checks every stored blob, the store record and the refs record. */
  async verify(): Promise<BlobProblem[]> {
    const out: BlobProblem[] = [];
    try { await checkStoreRecord(await this.reading('the store record', () => get<unknown>(STORE_KEY, this.metaStore)), this.location); } catch (e) {
      out.push({ where: `${META}/${STORE_KEY}`, problem: (e as Error).message });
    }
    const all = await this.reading('the blob list', () => keys<IDBValidKey>(this.blobStore));
    const digests: Digest[] = [];
    for (const k of all) {
      if (isDigest(k)) digests.push(k);
      else out.push({ where: `${BLOBS}/${String(k)}`, problem: 'unexpected record (its key is not a sha256 digest)' });
    }
    const now = new Set(digests);
    for (const d of [...this.digests, ...this.cache.keys()]) if (!now.has(d)) this.forgetBlob(d);
    this.digests = now;
    for (let i = 0; i < digests.length; i += FETCH_BATCH) {
      const batch = digests.slice(i, i + FETCH_BATCH);
      const values = await this.reading(`${batch.length} blobs`, () => getMany<unknown>(batch, this.blobStore));
      for (let j = 0; j < batch.length; j++) {
        const d = batch[j]!, data = asBytes(values[j]);
        if (!data) { out.push({ digest: d, where: `${BLOBS}/${d}`, problem: 'record is not bytes' }); continue; }
        this.sizes.set(d, data.length);
        if ((await sha256Digest(data)) !== d) {
          this.cache.delete(d);
          out.push({ digest: d, where: `${BLOBS}/${d}`, problem: 'content does not match its digest' });
        }
      }
    }
    try { await this.readRefs(); } catch (e) { out.push({ where: `${META}/${REFS_KEY}`, problem: (e as Error).message }); }
    return out;
  }

  async stats(): Promise<BackendStats> {
    const list = await this.listBlobs();
    return { blobs: list.length, bytes: list.reduce((n, b) => n + b.size, 0) };
  }

  // ---- journals -------------------------------------------------------------------

  private async journalHead(box: string): Promise<JournalHead | null> {
    const v = await this.reading(`the journal head of box ${box}`, () => {
      const tx = this.conn().transaction(HEADS, 'readonly');
      const req = tx.objectStore(HEADS).get(box);
      return txDone(tx).then(() => req.result as unknown);
    });
    if (v === undefined) return null;
    const h = v as Partial<JournalHead> | null;
    if (typeof h !== 'object' || h === null || !Number.isSafeInteger(h.gen) || !Number.isSafeInteger(h.size) || h.gen! < 0 || h.size! < 0) throw new LayerboxError(`the journal head of box ${box} in ${this.location} is corrupt`, { code: 'CORRUPT' });
    return { gen: h.gen!, size: h.size! };
  }

  /**
   * A box's journal as a checkpoint reads it; null when it has none, or when
   * a run (in any tab) is writing it: that run folds it when it ends.
   */
  async readJournal(box: string): Promise<JournalSource | null> {
    const locks = this.locks;
    if (locks && !(await locks.request(this.boxLock(box), { mode: 'exclusive', ifAvailable: true }, async (lock) => lock !== null))) return null;
    const head = await this.journalHead(box);
    return head ? new IdbJournal(this, box, head) : null;
  }

  /** A box's journal for a page that serves a guest worker; `null`: a scratch log in IndexedDB, removed on close. */
  async openJournalAsync(box: string | null): Promise<AsyncJournalLog> {
    if (box === null) {
      await this.sweepScratch().catch(noop); // a failed sweep leaves garbage, nothing worse
      const id = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
      const name = `${SCRATCH}${id}`;
      // Held while the log lives: a sweep in any tab leaves it alone.
      const release = await this.hold(this.scratchLock(name), null);
      return new IdbJournal(this, name, { gen: 0, size: 0 }, { scratch: true, release });
    }
    // One run writes a box's journal: another tab (or run in this one) gets a clear error until it ends.
    const release = await this.hold(this.boxLock(box), `box ${box} is in use by another run (in this tab or another one)`);
    try {
      return new IdbJournal(this, box, (await this.journalHead(box)) ?? { gen: 0, size: 0 }, { release });
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Takes a Web Lock until the returned function is called; with `busy`, fails with that message when another holds it. */
  private hold(name: string, busy: string | null): Promise<() => void> {
    const locks = this.locks;
    if (!locks) return Promise.resolve(noop);
    return new Promise((resolve, reject) => {
      locks.request(name, busy === null ? { mode: 'exclusive' } : { mode: 'exclusive', ifAvailable: true }, (lock) => {
        if (lock === null) {
          reject(new LayerboxError(busy!, { code: 'BUSY' }));
          return Promise.resolve();
        }
        return new Promise<void>((r) => resolve(() => r()));
      }).catch(reject);
    });
  }

  private boxLock(box: string): string {
    return `${DB_PREFIX}${this.name}:box:${box}`;
  }

  private scratchLock(box: string): string {
    return `${DB_PREFIX}${this.name}:${box}`;
  }

  /**
   * Removes the scratch logs no live run holds (left by a tab that was
   * closed or killed mid-run). Only where there are Web Locks to tell.
   */
  private async sweepScratch(): Promise<void> {
    const locks = this.locks;
    if (!locks) return;
    const keys = await this.journalTx('a look for abandoned scratch logs', [JOURNAL, HEADS], 'readonly', false, (tx) => {
      const segs = tx.objectStore(JOURNAL).getAllKeys(IDBKeyRange.bound([SCRATCH], [`${SCRATCH}\uffff`]));
      const heads = tx.objectStore(HEADS).getAllKeys(IDBKeyRange.bound(SCRATCH, `${SCRATCH}\uffff`));
      return () => [...segs.result, ...heads.result];
    });
    const boxes = new Set(keys.map((k) => (Array.isArray(k) ? k[0] : k)).filter((b): b is string => typeof b === 'string' && b.startsWith(SCRATCH)));
    for (const box of boxes)
      await locks.request(this.scratchLock(box), { mode: 'exclusive', ifAvailable: true }, async (lock) => {
        if (lock !== null) await new IdbJournal(this, box, { gen: 0, size: 0 }).remove();
      });
  }

  /** @internal One journal transaction; failures become errors carrying an errno (EDQUOT for the quota, else EIO). */
  async journalTx<T>(what: string, stores: string[], mode: IDBTransactionMode, strict: boolean, fn: (tx: IDBTransaction) => () => T): Promise<T> {
    let tx: IDBTransaction;
    try {
      tx = this.conn().transaction(stores, mode, { durability: strict ? 'strict' : 'relaxed' });
    } catch (e) {
      throw journalError(what, this.location, e);
    }
    const done = txDone(tx);
    let result: () => T;
    try { result = fn(tx); } catch (e) {
      abortQuietly(tx);
      done.catch(noop);
      throw journalError(what, this.location, e);
    }
    try { await done; } catch (e) { throw journalError(what, this.location, e); }
    return result();
  }

  /**
   * @internal Refuses to let a journal grow past what a checkpoint can still
   * fold: the checkpoint copies the journal's data into blobs before it
   * removes the journal, so the origin's quota must keep room for it.
   */
  async journalRoom(box: string, size: number, adding: number): Promise<void> {
    const est = await this.storage?.estimate?.().catch(() => undefined);
    if (!est || typeof est.usage !== 'number' || typeof est.quota !== 'number') return;
    if (est.usage + 2 * adding + size > est.quota)
      throw new LayerboxError(`the browser's storage quota is full: ${this.location} keeps ${est.usage} of ${est.quota} bytes, and the journal of ${box.startsWith(SCRATCH) ? 'an ephemeral box' : `box ${box}`} ` +
        `(${size} bytes) cannot take ${adding} more and still be folded into the store`, { errno: Errno.DQUOT });
  }

  /** Closes the IndexedDB connection. Blobs already in the cache stay readable through `readBlobSync`. */
  async close(): Promise<void> {
    if (this.closedBecause === null) this.closedBecause = 'close() was called';
    this.db.close();
  }
}

function journalError(what: string, location: string, e: unknown): LayerboxError {
  if (e instanceof LayerboxError) return e;
  if (isQuotaError(e)) return withCause(new LayerboxError(`the browser's storage quota is full: IndexedDB refused ${what} in ${location}`, { errno: Errno.DQUOT }), e);
  return withCause(new LayerboxError(`${what} in ${location} failed: ${describe(e)}`, { errno: Errno.IO }), e);
}

/** Parts cut to segments of at most SEGMENT bytes, each a buffer of its own (never a view into shared memory). The caller gives up the parts. */
async function* segments(parts: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const p of parts) {
    // A part that is a whole private buffer is stored as it is (no copy: a guest streams hundreds of MiB through here).
    if (p.length <= SEGMENT && p.byteOffset === 0 && p.byteLength === p.buffer.byteLength && p.buffer instanceof ArrayBuffer) yield p;
    else for (let at = 0; at < p.length; at += SEGMENT) yield p.slice(at, Math.min(p.length, at + SEGMENT));
  }
}

/**
 * One box's journal in IndexedDB (see the file comment). Written by the one
 * run that holds the box; `size` is what the head says.
 */
class IdbJournal implements AsyncJournalLog, JournalSource {
  /** The last segment read: a guest reads its spilled chunks in order. */
  private last: { at: number; bytes: Uint8Array } | null = null;
  /** `scratch`: removed on close; `release`: called on close (a lock held while it lives). */
  constructor(private b: IdbBackend, readonly box: string, private head: JournalHead, private o: { scratch?: boolean; release?: () => void } = {}) {}

  get size(): number {
    return this.head.size;
  }

  private key(offset: number, gen = this.head.gen): IDBValidKey {
    return [this.box, gen, offset];
  }

  /** Every key of this box's journal, of every generation. */
  private all(): IDBKeyRange {
    return IDBKeyRange.bound([this.box], [this.box, []]);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.head.size)
      throw new LayerboxError(`journal of box ${this.box}: read past its end (${offset}+${length} of ${this.head.size})`);
    const out = new Uint8Array(length);
    let got = 0;
    const take = (at: number, bytes: Uint8Array) => {
      const from = offset + got - at;
      const n = Math.min(bytes.length - from, length - got);
      if (from < 0 || n <= 0) return false;
      out.set(bytes.subarray(from, from + n), got);
      got += n;
      return true;
    };
    if (this.last && length) take(this.last.at, this.last.bytes);
    while (got < length) {
      const want = offset + got;
      const seg = await this.b.journalTx(`a read of the journal of box ${this.box}`, [JOURNAL], 'readonly', false, (tx) => {
        const req = tx.objectStore(JOURNAL).openCursor(IDBKeyRange.bound(this.key(0), this.key(want)), 'prev');
        return () => (req.result ? { at: (req.result.key as [string, number, number])[2], value: req.result.value as unknown } : null);
      });
      const bytes = seg && asBytes(seg.value);
      if (!seg || !bytes || !take(seg.at, bytes)) throw new LayerboxError(`journal of box ${this.box} in ${this.b.location} is damaged: no segment holds byte ${want}`, { code: 'CORRUPT', errno: Errno.IO });
      this.last = { at: seg.at, bytes };
    }
    return out;
  }

  /** Writes the parts from `at` in generation `gen`: every segment but the last in a transaction of its own, the last with `commit` (the new head). */
  private async write(parts: AsyncIterable<Uint8Array>, gen: number, at: number, clear: IDBKeyRange, what: string, commit: (tx: IDBTransaction, end: number) => void): Promise<number> {
    let end = at;
    let held: Uint8Array | null = null;
    let first = true;
    const put = (tx: IDBTransaction, seg: Uint8Array | null) => {
      const store = tx.objectStore(JOURNAL);
      if (first) store.delete(clear); // what a failed or cut write left there
      first = false;
      if (seg) store.put(seg, this.key(end, gen));
    };
    for await (const seg of segments(parts)) {
      if (held) {
        const h: Uint8Array = held;
        await this.b.journalRoom(this.box, this.head.size + end - at, h.length);
        await this.b.journalTx(what, [JOURNAL], 'readwrite', false, (tx) => { put(tx, h); return noop; });
        end += h.length;
      }
      held = seg;
    }
    const h = held;
    if (h) await this.b.journalRoom(this.box, this.head.size + end - at, h.length);
    await this.b.journalTx(what, [JOURNAL, HEADS], 'readwrite', true, (tx) => {
      put(tx, h);
      commit(tx, end + (h?.length ?? 0));
      return noop;
    });
    this.last = null;
    return end + (h?.length ?? 0);
  }

  async append(parts: AsyncIterable<Uint8Array>, _durable: boolean): Promise<void> {
    // Every append commits its head strictly: cheap next to a guest's own writes, and a spill then is durable as well.
    const { gen, size } = this.head;
    const end = await this.write(parts, gen, size, IDBKeyRange.bound(this.key(size), this.key(Infinity)), `an append to the journal of box ${this.box}`, (tx, end) => {
      tx.objectStore(HEADS).put({ gen, size: end }, this.box);
    });
    this.head = { gen, size: end };
  }

  async replace(parts: AsyncIterable<Uint8Array>): Promise<void> {
    const gen = this.head.gen + 1;
    const end = await this.write(parts, gen, 0, IDBKeyRange.bound([this.box, gen], [this.box, []]), `a rewrite of the journal of box ${this.box}`, (tx, end) => {
      tx.objectStore(JOURNAL).delete(IDBKeyRange.bound([this.box], [this.box, gen], false, true));
      tx.objectStore(HEADS).put({ gen, size: end }, this.box);
    });
    this.head = { gen, size: end };
  }

  async remove(): Promise<void> {
    await this.b.journalTx(`the removal of the journal of box ${this.box}`, [JOURNAL, HEADS], 'readwrite', true, (tx) => {
      tx.objectStore(JOURNAL).delete(this.all());
      tx.objectStore(HEADS).delete(this.box);
      return noop;
    });
    this.head = { gen: 0, size: 0 };
    this.last = null;
  }

  async close(): Promise<void> {
    this.last = null;
    const { scratch, release } = this.o;
    this.o = {};
    try { if (scratch) await this.remove(); } finally { release?.(); }
  }
}

function checkStoreRecord(rec: unknown, location: string): void {
  const r = rec as { magic?: unknown; version?: unknown } | undefined | null;
  if (r === undefined) throw new LayerboxError(`${location} is not a layerbox store (its meta object store has no "${STORE_KEY}" record)`);
  if (typeof r !== 'object' || r === null || r.magic !== STORE_MAGIC) throw new LayerboxError(`${location} is not a layerbox store (bad magic in its "${STORE_KEY}" record)`);
  if (r.version !== FORMAT_VERSION) throw new LayerboxError(`store ${location} has unknown format version ${JSON.stringify(r.version)} (this layerbox reads version ${FORMAT_VERSION})`);
}

/** Opens the database at `version` (undefined: as it is, creating it if new), adding every object store it lacks. */
function openAt(factory: IDBFactory, dbName: string, version?: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let req: IDBOpenDBRequest;
    try { req = version === undefined ? factory.open(dbName) : factory.open(dbName, version); } catch (e) { reject(e); return; }
    req.onupgradeneeded = (ev) => {
      const db = req.result;
      if (ev.oldVersion === 0) {
        db.createObjectStore(BLOBS);
        db.createObjectStore(META).put({ magic: STORE_MAGIC, version: FORMAT_VERSION }, STORE_KEY);
      }
      if (!db.objectStoreNames.contains(JOURNAL)) db.createObjectStore(JOURNAL);
      if (!db.objectStoreNames.contains(HEADS)) db.createObjectStore(HEADS);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * Opens (creating if new) the database; a new one gets every object store
 * and the store record in its upgrade transaction. A layerbox store made
 * before journals existed is upgraded to the next version, which adds only
 * the journal's object stores.
 */
async function openDatabase(factory: IDBFactory, dbName: string): Promise<IDBDatabase> {
  const db = await openAt(factory, dbName);
  const names = db.objectStoreNames;
  if (!names.contains(BLOBS) || !names.contains(META) || (names.contains(JOURNAL) && names.contains(HEADS))) return db;
  const next = db.version + 1;
  db.close();
  return openAt(factory, dbName, next);
}

/**
 * Opens (or creates) the IndexedDB store `layerbox:<name>`. Refuses a
 * database that is not a layerbox store or has an unknown format version.
 * Asks once for persistent storage (`navigator.storage.persist()`), waiting
 * briefly for the answer (Firefox may prompt the user): `persisted` holds it.
 */
export async function openIdbBackend(name: string, opts: IdbBackendOptions = {}): Promise<IdbBackend> {
  if (typeof name !== 'string' || !name) throw new LayerboxError(`an IndexedDB store needs a name, not ${JSON.stringify(name)}`);
  const factory = opts.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  const location = `indexeddb:${DB_PREFIX}${name}`;
  if (!factory) throw new LayerboxError(`cannot open ${location}: this host has no IndexedDB (pass opts.indexedDB)`);
  let db: IDBDatabase;
  try { db = await openDatabase(factory, DB_PREFIX + name); } catch (e) {
    if (isQuotaError(e)) throw withCause(new LayerboxError(`cannot create ${location}: the browser's storage quota is full`), e);
    throw withCause(new LayerboxError(`cannot open ${location}: ${describe(e)}`), e);
  }
  let digests: Digest[];
  try {
    const names = db.objectStoreNames;
    if (!names.contains(BLOBS) || !names.contains(META) || !names.contains(JOURNAL) || !names.contains(HEADS)) throw new LayerboxError(`${location} is not a layerbox store (it lacks the object stores ${BLOBS}, ${META}, ${JOURNAL} and ${HEADS})`);
    const tx = db.transaction([BLOBS, META], 'readonly');
    const done = txDone(tx);
    const rec = tx.objectStore(META).get(STORE_KEY);
    const ks = tx.objectStore(BLOBS).getAllKeys();
    await done;
    checkStoreRecord(rec.result, location);
    digests = ks.result.filter(isDigest);
  } catch (e) {
    db.close();
    if (e instanceof LayerboxError) throw e;
    throw withCause(new LayerboxError(`cannot open ${location}: ${describe(e)}`), e);
  }
  const storage = opts.storage === undefined ? (globalThis as { navigator?: { storage?: StorageManagerLike } }).navigator?.storage : opts.storage;
  const backend = new IdbBackend(name, db, digests, { ...opts, storage: storage ?? null });
  if (storage && typeof storage.persist === 'function') {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const answer = Promise.resolve(storage.persist()).then((v) => { backend.persisted = !!v; }, noop);
      await Promise.race([answer, new Promise<void>((r) => { timer = setTimeout(r, PERSIST_WAIT_MS); })]);
    } catch { /* ignored: persistence is a wish, not a requirement */ } finally { if (timer !== undefined) clearTimeout(timer); }
  }
  return backend;
}
