import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Digest, digestBytes, digestFromBytes } from '../../src/digest.js';
import { LayerboxError, hostFailure } from '../../src/errno.js';
import { type Backend, type BackendStats, type BlobProblem, type JournalLog, type JournalSource, type LazyBlob, type RefsDoc, Mutex, checkRefs, emptyRefs } from '../../src/store/backend.js';
import { FileJournalLog } from './journal-file.js';

const STORE_FILE = 'layerbox-store.json';
const STORE_MAGIC = 'layerbox-store';
const REFS_MAGIC = 'layerbox-refs';
const PACK_MAGIC = Buffer.from('LBXPACK\0', 'latin1');
/** Footer magic of a pack whose index is in insertion order (older packs: sorted when loaded). */
const INDEX_MAGIC = Buffer.from('LBXPIDX\0', 'latin1');
/** Footer magic of a pack whose index is sorted by digest (what this layerbox writes). */
const SORTED_INDEX_MAGIC = Buffer.from('LBXPIDS\0', 'latin1');
const HEADER = 12; // magic + u32 version
const FOOTER = 16; // u64 index offset + magic
const ENTRY = 48; // 32 digest bytes + u64 offset + u64 length
/** Indexes up to this many entries are kept in memory whole; larger ones as a sample (see PackIndex). */
const RESIDENT_ENTRIES = 4096;
/** Entries per block of a large index read from disk, and blocks kept per pack. */
const BLOCK = 64;
const BLOCK_CACHE = 256;
const PACK_NAME = /^[0-9a-f]{64}\.pack$/;
const LOCK_RETRY_MS = 20;
const LOCK_TIMEOUT_MS = 60_000;
/** Writes are gathered into buffers of this size: one syscall per buffer, not per (small) blob. */
const WRITE_BUFFER = 4 << 20;

interface Loc { pack: string; offset: number; length: number; /** Entry number in its pack's index. */ entry?: number }
interface PackEntry { digest: Digest; offset: number; length: number }

/** Packs below this size are folded together by gc. */
const SMALL_PACK = 8 * 1024 * 1024;
/**
 * Each pack is kept at least this many times the bytes of the next smaller
 * one (git's `repack --geometric=2`): a store holds O(log bytes) packs, and a
 * byte is copied O(log bytes) times over its life.
 */
const GEOMETRIC = 2;
/** Bits of a pack's membership filter per blob, and probes per lookup: about 1% of absent digests get past it. */
const FILTER_BITS = 10, FILTER_PROBES = 4;

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();
const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Size caps of the store's small files, checked before they are read. */
const MAX_REFS_BYTES = 64 << 20, MAX_MARKER_BYTES = 4096, MAX_LOCK_BYTES = 64;

/**
 * Opens a store file for reading without blocking (a FIFO planted under a
 * store file's name would otherwise hang the open) and refuses anything but
 * a regular file: a directory, a FIFO or a device named like a pack or
 * refs.json is damage, reported as such.
 */
function openStoreFile(file: string, what: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    if (!fs.fstatSync(fd).isFile()) throw new LayerboxError(`${what} is not a regular file`, { code: 'CORRUPT' });
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

/** A whole small store file as text, refused if it is not a regular file or larger than `max` bytes. */
function readStoreFile(file: string, what: string, max: number): string {
  const fd = openStoreFile(file, what);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > max) throw new LayerboxError(`${what} is too large (${size} bytes; at most ${max})`, { code: 'CORRUPT' });
    return Buffer.from(readExact(fd, 0, size)).toString('utf8');
  } finally { fs.closeSync(fd); }
}

/** True unless signalling `pid` says it does not exist (EPERM means alive but not ours). */
function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return errCode(e) !== 'ESRCH'; }
}

/** fsync a directory so a rename into it survives a crash; some hosts (Windows) cannot, which is not an error there. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try { fd = fs.openSync(dir, 'r'); fs.fsyncSync(fd); } catch (e) { if (process.platform !== 'win32') throw e; } finally { if (fd !== undefined) fs.closeSync(fd); }
}

/** Writes a small temp file; on failure (a full disk) removes what was created, so nothing is left in tmp/. */
function writeTemp(file: string, text: string): void {
  try { fs.writeFileSync(file, text, { flag: 'wx' }); } catch (e) { fs.rmSync(file, { force: true }); throw e; }
}

/** Positional read of exactly `length` bytes: readSync may return fewer. */
function readExact(fd: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let got = 0; got < length;) {
    const n = fs.readSync(fd, out, got, length - got, offset + got);
    if (n === 0) throw new LayerboxError(`unexpected end of file at byte ${offset + got}`, { code: 'CORRUPT' });
    got += n;
  }
  return out;
}

/**
 * The index of one pack, kept as its raw 48-byte entries sorted by digest:
 * lookups are binary searches, and memory is 48 bytes per blob, with no
 * object per blob (a store of 100k blobs opens in milliseconds).
 */
class PackIndex {
  private total = -1;
  /** One bit per entry: read and found to match its digest in this process (packs never change, so once is enough). */
  private checked: Uint8Array;
  /**
   * A Bloom filter of the digests, so a lookup of a blob the pack lacks
   * usually costs a few bit tests, not a search (nor, for a large index, a
   * block read). Its probes are words of the digest itself: a sha256 is
   * already uniform.
   */
  private filter: Uint8Array;
  private filterBits: number;
  /** Blocks of entries read from disk (large indexes only), most recently used last. */
  private blocks = new Map<number, Buffer>();
  private constructor(
    /** All entries, when the index is kept in memory whole (small or older packs). */
    private buf: Buffer | null,
    /** Otherwise: the first digest of every block of BLOCK entries, searched first; the block is then read from the pack. */
    private sample: Buffer | null,
    readonly count: number,
    private dataEnd: number,
    private bad: (why: string) => LayerboxError,
    private readAt: ((pos: number, length: number) => Uint8Array) | null,
    private entriesPos: number,
    entries: Buffer,
  ) {
    this.checked = new Uint8Array((count + 7) >> 3);
    this.filterBits = Math.max(64, count * FILTER_BITS);
    this.filter = new Uint8Array((this.filterBits + 7) >> 3);
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < FILTER_PROBES; j++) {
        const bit = entries.readUInt32LE(i * ENTRY + 16 + 4 * j) % this.filterBits;
        this.filter[bit >> 3]! |= 1 << (bit & 7);
      }
    }
  }

  /** False when the pack certainly lacks `key`; true when it may hold it. */
  mayHold(key: Uint8Array): boolean {
    for (let j = 0, p = 16; j < FILTER_PROBES; j++, p += 4) {
      const bit = ((key[p]! | (key[p + 1]! << 8) | (key[p + 2]! << 16) | (key[p + 3]! << 24)) >>> 0) % this.filterBits;
      if (!(this.filter[bit >> 3]! & (1 << (bit & 7)))) return false;
    }
    return true;
  }

  /** Bytes of the pack file: what merging it costs, and what orders packs for merging. */
  get weight(): number {
    return this.dataEnd + 4 + this.count * ENTRY + FOOTER;
  }

  isChecked(entry: number): boolean {
    return !!(this.checked[entry >> 3]! & (1 << (entry & 7)));
  }

  setChecked(entry: number): void {
    this.checked[entry >> 3]! |= 1 << (entry & 7);
  }

  /**
   * From an index as stored (u32 count, then entries). A sorted index is used
   * as it is (nothing per entry is checked now; an entry is checked when
   * used): a small one kept whole, a large one (given `readAt`, which reads
   * the pack) as a sample of one digest per block of entries, so a store's
   * memory does not grow with its blobs. An older, unsorted index is sorted
   * here and kept whole.
   */
  static parse(index: Buffer, dataEnd: number, sorted: boolean, bad: (why: string) => LayerboxError, readAt?: (pos: number, length: number) => Uint8Array, indexPos = 0): PackIndex {
    const count = index.readUInt32LE(0);
    if (index.length !== 4 + count * ENTRY) throw bad(`index of ${count} entries has the wrong length (${index.length} bytes)`);
    let buf = index.subarray(4);
    if (!sorted) {
      const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => compareKeys(buf, a * ENTRY, buf, b * ENTRY));
      const out = Buffer.alloc(count * ENTRY);
      order.forEach((from, i) => buf.copy(out, i * ENTRY, from * ENTRY, from * ENTRY + ENTRY));
      buf = out;
    } else if (readAt && count > RESIDENT_ENTRIES) {
      const blocks = Math.ceil(count / BLOCK);
      const sample = Buffer.alloc(blocks * 32);
      for (let b = 0; b < blocks; b++) buf.copy(sample, b * 32, b * BLOCK * ENTRY, b * BLOCK * ENTRY + 32);
      return new PackIndex(null, sample, count, dataEnd, bad, readAt, indexPos + 4, buf);
    }
    const whole = Buffer.from(buf);
    return new PackIndex(whole, null, count, dataEnd, bad, null, 0, whole);
  }

  /** Block `b` of a large index, from the cache or the pack. */
  private block(b: number): Buffer {
    let blk = this.blocks.get(b);
    if (blk) {
      this.blocks.delete(b);
    } else {
      const n = Math.min(BLOCK, this.count - b * BLOCK);
      blk = Buffer.from(this.readAt!(this.entriesPos + b * BLOCK * ENTRY, n * ENTRY));
      if (this.blocks.size >= BLOCK_CACHE) this.blocks.delete(this.blocks.keys().next().value!);
    }
    this.blocks.set(b, blk);
    return blk;
  }

  /** Where entry i's 48 bytes are. */
  private rec(i: number): { buf: Buffer; p: number } {
    if (this.buf) return { buf: this.buf, p: i * ENTRY };
    return { buf: this.block(Math.floor(i / BLOCK)), p: (i % BLOCK) * ENTRY };
  }

  /** Entries as stored: sorted by digest, the same bytes for the same blobs at the same offsets. */
  static encode(entries: PackEntry[]): Buffer {
    const keyed = entries.map((e) => ({ key: Buffer.from(digestBytes(e.digest)), e })).sort((a, b) => a.key.compare(b.key));
    const index = Buffer.alloc(4 + entries.length * ENTRY);
    index.writeUInt32LE(entries.length, 0);
    keyed.forEach(({ key, e }, i) => {
      const p = 4 + i * ENTRY;
      key.copy(index, p);
      index.writeBigUInt64LE(BigInt(e.offset), p + 32);
      index.writeBigUInt64LE(BigInt(e.length), p + 40);
    });
    return index;
  }

  private at(i: number): { offset: number; length: number; entry: number } {
    const { buf, p } = this.rec(i);
    const offset = Number(buf.readBigUInt64LE(p + 32)), length = Number(buf.readBigUInt64LE(p + 40));
    if (offset < HEADER || offset + length > this.dataEnd) throw this.bad(`entry ${i} lies outside the data area`);
    return { offset, length, entry: i };
  }

  find(key: Uint8Array): { offset: number; length: number; entry: number } | null {
    let lo = 0, hi = this.count - 1;
    if (this.sample) {
      // The last block whose first digest is not above the key holds it, if anything does.
      let blo = 0, bhi = this.sample.length / 32 - 1;
      while (blo < bhi) {
        const mid = (blo + bhi + 1) >>> 1;
        if (compareKeys(this.sample, mid * 32, key, 0) <= 0) blo = mid;
        else bhi = mid - 1;
      }
      lo = blo * BLOCK;
      hi = Math.min(this.count, lo + BLOCK) - 1;
    }
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const { buf, p } = this.rec(mid);
      const c = compareKeys(buf, p, key, 0);
      if (c === 0) return this.at(mid);
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return null;
  }

  /** Bytes of all its blobs. */
  get bytes(): number {
    if (this.total < 0) {
      let n = 0;
      for (let i = 0; i < this.count; i++) n += this.at(i).length;
      this.total = n;
    }
    return this.total;
  }

  *entries(): Generator<PackEntry> {
    for (let i = 0; i < this.count; i++) yield this.entry(i);
  }

  private entry(i: number): PackEntry {
    const { buf, p } = this.rec(i);
    return { digest: digestFromBytes(buf.subarray(p, p + 32)), ...this.at(i) };
  }

  /**
   * Entries in the order their bytes lie in the pack, so a merge keeps a
   * file's chunks side by side (and reads the pack front to back). Sorted
   * through typed arrays: no object per blob.
   */
  *entriesByOffset(): Generator<PackEntry> {
    const offsets = new Float64Array(this.count);
    for (let i = 0; i < this.count; i++) offsets[i] = this.at(i).offset;
    const order = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) order[i] = i;
    order.sort((a, b) => offsets[a]! - offsets[b]!);
    for (const i of order) yield this.entry(i);
  }
}

/** Orders two 32-byte digests in place (no Buffer.compare: its offset checks cost more than the comparison). */
function compareKeys(a: Uint8Array, ai: number, b: Uint8Array, bi: number): number {
  for (let k = 0; k < 32; k++) {
    const d = a[ai + k]! - b[bi + k]!;
    if (d) return d;
  }
  return 0;
}

/** Reads a pack's header, footer and index (never its data); throws a LayerboxError naming the pack if any is wrong. */
function readPackIndex(file: string, fd: number, withHash = false, readAt?: (pos: number, length: number) => Uint8Array): { index: PackIndex; indexHash: string } {
  const where = `packs/${path.basename(file)}`;
  const size = fs.fstatSync(fd).size;
  const bad = (why: string) => new LayerboxError(`pack ${where} is broken: ${why}`, { code: 'CORRUPT' });
  if (size < HEADER + 4 + FOOTER) throw bad(`too short (${size} bytes)`);
  const head = Buffer.from(readExact(fd, 0, HEADER));
  if (!head.subarray(0, 8).equals(PACK_MAGIC)) throw bad('bad magic (not a layerbox pack)');
  const version = head.readUInt32LE(8);
  if (version !== 1) throw bad(`unknown pack version ${version} (this layerbox reads version 1)`);
  const foot = Buffer.from(readExact(fd, size - FOOTER, FOOTER));
  const sorted = foot.subarray(8).equals(SORTED_INDEX_MAGIC);
  if (!sorted && !foot.subarray(8).equals(INDEX_MAGIC)) throw bad('bad footer magic (truncated or not a layerbox pack)');
  const indexOffset = Number(foot.readBigUInt64LE(0));
  if (indexOffset < HEADER || indexOffset > size - FOOTER - 4) throw bad(`index offset ${indexOffset} out of range`);
  const raw = Buffer.from(readExact(fd, indexOffset, size - FOOTER - indexOffset));
  return { index: PackIndex.parse(raw, indexOffset, sorted, bad, readAt, indexOffset), indexHash: withHash ? sha256(raw).toString('hex') : '' };
}

/**
 * A store in a local directory. Blobs live in immutable pack files, written
 * one per `putBlobs` batch and merged as they come (see `putBlobs`), so the
 * host file count and the packs a lookup visits grow with the log of the
 * store's bytes, not with batches or blobs; refs are one JSON document
 * replaced atomically; a lock file keeps other processes out of critical
 * sections. Every read is checked against its digest.
 */
export class DirBackend implements Backend {
  readonly kind = 'dir';
  /** The index of every loaded pack, by file name. */
  private packs = new Map<string, PackIndex>();
  /** The same packs in the order lookups try them: the pack of the last hit first, new packs first. */
  private searchOrder: Array<[string, PackIndex]> = [];
  /** Packs that failed to load: not re-read on every rescan; `verify` reports them. */
  private broken = new Set<string>();
  private fds = new Map<string, number>();
  private mutex = new Mutex();

  /** Use `openDirBackend`, which checks and creates the layout. */
  constructor(readonly location: string) {
    this.rescan();
  }

  private p(...parts: string[]): string { return path.join(this.location, ...parts); }

  /**
   * Picks up packs written (or removed) by other processes since we last
   * looked. A merge or gc elsewhere writes its new pack before it removes the
   * old ones, but a directory listing taken while that happens may show
   * neither; so when a pack vanished (or `settle` asks), the directory is
   * listed again until two listings agree: the later one then shows every
   * pack that replaced one gone before it began.
   */
  private rescan(settle = false): void {
    let before = '';
    for (let round = 0; ; round++) {
      const listed = fs.readdirSync(this.p('packs')).filter((n) => PACK_NAME.test(n)).sort();
      const names = new Set(listed);
      let vanished = false;
      for (const name of this.packs.keys()) if (!names.has(name)) { this.forget(name); vanished = true; }
      for (const name of names) {
        if (this.packs.has(name) || this.broken.has(name)) continue;
        try { this.addPack(name, readPackIndex(this.p('packs', name), this.fd(name), false, (pos, len) => readExact(this.fd(name), pos, len)).index); } catch (e) {
          if (errCode(e) === 'ENOENT') { vanished = true; continue; } // removed by a merge or gc while we looked
          if (!(e instanceof LayerboxError)) throw e;
          this.broken.add(name);
          this.forget(name);
        }
      }
      const now = listed.join();
      if (!(vanished || settle) || (round > 0 && now === before)) return;
      before = now;
    }
  }

  private addPack(name: string, index: PackIndex): void {
    this.packs.set(name, index);
    this.searchOrder.unshift([name, index]);
  }

  /** Where a blob is stored, or null. */
  private locate(digest: Digest): Loc | null {
    const key = digestBytes(digest);
    const order = this.searchOrder;
    for (let i = 0; i < order.length; i++) {
      const [pack, index] = order[i]!;
      if (!index.mayHold(key)) continue;
      const at = index.find(key);
      if (!at) continue;
      // Reads come in runs from one pack (a file's chunks, a box's recent writes): try this one first next time.
      if (i > 0) order.unshift(...order.splice(i, 1));
      return { pack, ...at };
    }
    return null;
  }

  /** Every stored blob once (the first pack holding it). */
  private *allBlobs(): Generator<Loc & { digest: Digest }> {
    const seen = new Set<Digest>();
    for (const [pack, index] of this.packs)
      for (const e of index.entries()) {
        if (seen.has(e.digest)) continue;
        seen.add(e.digest);
        yield { pack, ...e };
      }
  }

  private forget(name: string): void {
    if (this.packs.delete(name)) this.searchOrder = this.searchOrder.filter(([n]) => n !== name);
    const fd = this.fds.get(name);
    if (fd !== undefined) { this.fds.delete(name); fs.closeSync(fd); }
  }

  private fd(pack: string): number {
    let fd = this.fds.get(pack);
    if (fd === undefined) this.fds.set(pack, (fd = openStoreFile(this.p('packs', pack), `pack packs/${pack} is broken: it`)));
    return fd;
  }

  private readRaw(loc: Loc): Uint8Array {
    return readExact(this.fd(loc.pack), loc.offset, loc.length);
  }

  lock<T>(fn: () => Promise<T>): Promise<T> {
    // The mutex queues callers in this process; the lock file excludes other processes.
    return this.mutex.run(async () => {
      const token = await this.acquireLockFile().catch((e: unknown) => { throw hostFailure(e, `locking the store ${this.location}`); });
      try {
        this.cleanTmp();
        this.rescan(); // another process may have changed packs while we waited
        return await fn();
      } finally {
        this.releaseLockFile(token);
      }
    });
  }

  private async acquireLockFile(): Promise<string> {
    const file = this.p('lock'), token = `${process.pid}\n`, deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (;;) {
      // The lock appears with its pid already in it (a hard link of a written temp file), so a
      // holder killed at any instant never leaves an empty lock that nobody could judge stale.
      const mine = this.tmpName();
      writeTemp(mine, token);
      try { fs.linkSync(mine, file); return token; } catch (e) { if (errCode(e) !== 'EEXIST') throw e; } finally { fs.rmSync(mine, { force: true }); }
      let held: string;
      try { held = readStoreFile(file, `lock file ${file}`, MAX_LOCK_BYTES); } catch (e) { if (errCode(e) === 'ENOENT') continue; throw e; }
      const pid = Number.parseInt(held, 10);
      // A lock without a pid is not one of ours (ours are written whole); once it is a few seconds old, take it over.
      const unreadable = !(Number.isInteger(pid) && pid > 0) && Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 2000;
      if (unreadable || (Number.isInteger(pid) && pid > 0 && !pidAlive(pid))) {
        // Stale: its holder died. Move it aside atomically so only one taker wins, then retry.
        // Aside in tmp/ under our pid: if we die before removing it, the next cleanTmp does.
        const aside = this.tmpName();
        try { fs.renameSync(file, aside); } catch (e) { if (errCode(e) === 'ENOENT') continue; throw e; }
        // If a live holder replaced the stale file between our read and rename, put its lock back.
        if (readStoreFile(aside, `lock file ${file}`, MAX_LOCK_BYTES) !== held) try { fs.linkSync(aside, file); } catch { /* someone holds it again */ }
        fs.rmSync(aside, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new LayerboxError(`store ${this.location} is locked by process ${held.trim() || '?'} (${file}); gave up after ${LOCK_TIMEOUT_MS / 1000} s`, { code: 'BUSY' });
      await sleep(LOCK_RETRY_MS);
    }
  }

  /**
   * Marks a box as in use by this process until the returned release is
   * called: another process gets a clear error instead of racing it. A lease
   * whose process died is taken over.
   */
  async leaseBox(name: string): Promise<() => void> {
    try { return await this.takeLease(name); } catch (e) { throw hostFailure(e, `marking box ${name} in use`); }
  }

  private async takeLease(name: string): Promise<() => void> {
    const dir = this.p('leases');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, encodeURIComponent(name)), token = `${process.pid}\n`;
    for (;;) {
      const mine = this.tmpName();
      writeTemp(mine, token);
      try {
        fs.linkSync(mine, file);
        return () => { try { if (readStoreFile(file, `lease file ${file}`, MAX_LOCK_BYTES) === token) fs.unlinkSync(file); } catch { /* gone */ } };
      } catch (e) { if (errCode(e) !== 'EEXIST') throw e; } finally { fs.rmSync(mine, { force: true }); }
      let held: string;
      try { held = readStoreFile(file, `lease file ${file}`, MAX_LOCK_BYTES); } catch (e) { if (errCode(e) === 'ENOENT') continue; throw e; }
      const pid = Number.parseInt(held, 10);
      if (held === token) throw new LayerboxError(`box ${name} is already in use by this process`, { code: 'BUSY' });
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) throw new LayerboxError(`box ${name} is in use by process ${pid}`, { code: 'BUSY' });
      const aside = this.tmpName();
      try { fs.renameSync(file, aside); } catch (e) { if (errCode(e) === 'ENOENT') continue; throw e; }
      if (readStoreFile(aside, `lease file ${file}`, MAX_LOCK_BYTES) !== held) try { fs.linkSync(aside, file); } catch { /* taken again */ }
      fs.rmSync(aside, { force: true });
    }
  }

  private releaseLockFile(token: string): void {
    const file = this.p('lock');
    try { if (readStoreFile(file, `lock file ${file}`, MAX_LOCK_BYTES) === token) fs.unlinkSync(file); } catch (e) { if (errCode(e) !== 'ENOENT') throw e; }
  }

  /** Removes temp files left by processes that died mid-write (names start with the writer's pid). */
  private cleanTmp(): void {
    for (const n of fs.readdirSync(this.p('tmp'))) {
      const pid = Number.parseInt(n, 10);
      if (!(Number.isInteger(pid) && (pid === process.pid || pidAlive(pid)))) fs.rmSync(this.p('tmp', n), { force: true, recursive: true });
    }
  }

  private tmpName(): string {
    return this.p('tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  /** temp file + fsync + rename + directory fsync: a reader sees the old file or the new one, never a torn one. */
  private writeAtomic(dest: string, data: Uint8Array): void {
    const tmp = this.tmpName();
    try {
      const fd = fs.openSync(tmp, 'wx');
      try { fs.writeFileSync(fd, data); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
      fs.renameSync(tmp, dest);
    } catch (e) {
      // A full disk must not also leave a torn temp file behind.
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fsyncDir(path.dirname(dest));
  }

  /** Writes one pack with `blobs` (digests unique) atomically; returns its name and entries. */
  private async writePack(blobs: Iterable<{ digest: Digest; data: Uint8Array }>): Promise<{ name: string; entries: PackEntry[] }> {
    const tmp = this.tmpName();
    const fh = await fs.promises.open(tmp, 'wx');
    try {
      let pos = 0, buffered: Uint8Array[] = [], bufferedBytes = 0;
      const flush = async () => {
        const buf = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered);
        for (let done = 0; done < buf.length;) done += (await fh.write(buf, done, buf.length - done, pos + done)).bytesWritten;
        pos += buf.length; buffered = []; bufferedBytes = 0;
      };
      const add = async (b: Uint8Array) => {
        buffered.push(b); bufferedBytes += b.length;
        if (bufferedBytes >= WRITE_BUFFER) await flush();
      };
      const head = Buffer.alloc(HEADER); PACK_MAGIC.copy(head); head.writeUInt32LE(1, 8);
      await add(head);
      const entries: PackEntry[] = [];
      for (const { digest, data } of blobs) {
        entries.push({ digest, offset: pos + bufferedBytes, length: data.length });
        await add(data);
      }
      const indexOffset = pos + bufferedBytes;
      const index = PackIndex.encode(entries);
      const foot = Buffer.alloc(FOOTER); foot.writeBigUInt64LE(BigInt(indexOffset), 0); SORTED_INDEX_MAGIC.copy(foot, 8);
      await add(index); await add(foot); await flush();
      await fh.sync();
      await fh.close();
      // Named by its index: the same blobs at the same offsets give the same name, so a rename over it is harmless.
      const name = `${sha256(index).toString('hex')}.pack`;
      fs.renameSync(tmp, this.p('packs', name));
      fsyncDir(this.p('packs'));
      this.broken.delete(name);
      if (!this.packs.has(name)) this.addPack(name, PackIndex.parse(index, indexOffset, true, (why) => new LayerboxError(`pack packs/${name} is broken: ${why}`, { code: 'CORRUPT' })));
      return { name, entries };
    } catch (e) {
      await fh.close().catch(() => {});
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  hasBlob(digest: Digest): boolean {
    return this.locate(digest) !== null;
  }

  async getBlob(digest: Digest): Promise<Uint8Array> {
    return this.readBlobSync(digest);
  }

  readBlobSync(digest: Digest): Uint8Array {
    for (let round = 0; ; round++) {
      const loc = this.locate(digest);
      let data: Uint8Array | undefined;
      // A pack we know of but had not opened yet may be gone: merged or rewritten by another process (open ones stay readable).
      try { if (loc) data = this.readRaw(loc); } catch (e) {
        if (errCode(e) !== 'ENOENT' || round >= 8) throw e instanceof LayerboxError ? new LayerboxError(`blob ${digest} cannot be read: ${e.message} (in packs/${loc!.pack})`, { code: e.code, cause: e }) : e;
      }
      if (data) {
        this.check(loc!, digest, data);
        return data;
      }
      // Missing here: look at packs/ again (settled, so a merge running now cannot hide it) before failing.
      if (!loc && round > 0) throw new LayerboxError(`blob ${digest} is missing from the store ${this.location}${this.broken.size ? ` (${this.broken.size} damaged pack${this.broken.size === 1 ? '' : 's'}: run fsck)` : ''}`, { code: 'NOT_FOUND' });
      this.rescan(true);
    }
  }

  /** Checks bytes read from `loc` against `digest` once per process (packs never change); a mismatch names the blob. */
  private check(loc: Loc, digest: Digest, data: Uint8Array): void {
    const index = this.packs.get(loc.pack);
    if (index && loc.entry !== undefined && index.isChecked(loc.entry)) return;
    if (digestFromBytes(sha256(data)) !== digest) throw new LayerboxError(`blob ${digest} is corrupt: its content does not match its digest (in packs/${loc.pack})`, { code: 'CORRUPT' });
    if (index && loc.entry !== undefined) index.setChecked(loc.entry);
  }

  readBlobsInto(run: Digest[], lengths: number[], dest: Uint8Array, from: number): boolean {
    // Blobs stored side by side in one pack (a file's chunks usually are) are read with one call.
    const locs: Loc[] = [];
    let pos = -from;
    for (const [i, d] of run.entries()) {
      const loc = this.locate(d);
      if (!loc || loc.length !== lengths[i] || loc.entry === undefined) return false;
      // A blob not checked yet must land whole in `dest`, to be checked there.
      if (!this.packs.get(loc.pack)!.isChecked(loc.entry) && (pos < 0 || pos + loc.length > dest.length)) return false;
      locs.push(loc);
      pos += loc.length;
    }
    let at = 0, skip = from;
    for (let i = 0; i < locs.length && at < dest.length;) {
      let j = i, span = locs[i]!.length;
      while (j + 1 < locs.length && locs[j + 1]!.pack === locs[i]!.pack && locs[j + 1]!.offset === locs[j]!.offset + locs[j]!.length) span += locs[++j]!.length;
      if (skip > span) return false;
      const n = Math.min(span - skip, dest.length - at);
      let fd: number;
      // Its pack merged away by another process before we opened it: readBlobSync finds the blob's new pack.
      try { fd = this.fd(locs[i]!.pack); } catch (e) { if (errCode(e) === 'ENOENT') return false; throw e; }
      for (let got = 0; got < n;) {
        const r = fs.readSync(fd, dest, at + got, n - got, locs[i]!.offset + skip + got);
        if (r === 0) return false;
        got += r;
      }
      // Check, in place, the blobs read for the first time.
      let p = at - skip;
      for (let k = i; k <= j; k++) {
        const l = locs[k]!;
        this.check(l, run[k]!, dest.subarray(p, p + l.length));
        p += l.length;
      }
      at += n;
      skip = 0;
      i = j + 1;
    }
    return at === dest.length;
  }

  /**
   * Stores the batch as a new pack, merged with the packs it would break the
   * geometric progression of (see `packsToRoll`). The merged pack is durable
   * and listed in packs.json before the packs it replaces are removed, so no
   * reader (here, in another process, or over HTTP) misses a blob.
   */
  async putBlobs(blobs: ReadonlyArray<{ digest: Digest; data: Uint8Array }>): Promise<void> {
    await this.putBlobsLazy(blobs.map(({ digest, data }) => ({ digest, length: data.length, read: () => data })));
  }

  /** As putBlobs, with each blob's bytes read only as the pack is written: one pack, memory bounded by the write buffer. */
  async putBlobsLazy(blobs: ReadonlyArray<LazyBlob>): Promise<void> {
    const fresh = new Map<Digest, LazyBlob>();
    let bytes = 0;
    for (const b of blobs) if (!fresh.has(b.digest) && !this.hasBlob(b.digest)) { fresh.set(b.digest, b); bytes += b.length; }
    if (!fresh.size) return;
    const batch = function* (): Generator<{ digest: Digest; data: Uint8Array }> {
      for (const b of fresh.values()) yield { digest: b.digest, data: b.read() };
    };
    try {
      const roll = this.packsToRoll(HEADER + bytes + 4 + fresh.size * ENTRY + FOOTER);
      if (roll.length) {
        let merged: string | null = null;
        try { merged = (await this.writePack(this.merged(roll, batch()))).name; } catch (e) {
          // The merge is an optimisation: when the host fails it (no room for the copy, an unreadable
          // old pack), the batch is stored alone and the next write tries the merge again.
          if (!(e instanceof LayerboxError || errCode(e))) throw e;
        }
        if (merged !== null) {
          this.publishPackList();
          // The batch is stored now: a pack that cannot be removed (or whose removal a crash undoes: no
          // directory fsync) only leaves duplicates, which the next merge drops.
          for (const name of roll) {
            if (name === merged) continue;
            this.forget(name);
            try { fs.rmSync(this.p('packs', name), { force: true }); } catch { /* left for the next merge or gc */ }
          }
          this.publishPackList();
          return;
        }
      }
      await this.writePack(batch());
      this.publishPackList();
    } catch (e) { throw hostFailure(e, `writing a pack to the store ${this.location}`); }
  }

  /**
   * The packs to merge with a new batch of `weight` bytes, as git's
   * `repack --geometric=2` picks them: sorted by size, every pack must weigh at
   * least twice the next smaller; the smallest packs up to the last one that
   * breaks that are rolled together, and then each next pack that would not
   * be twice the merged one. Empty when the batch goes in alone. Each merge
   * at least multiplies by 1.5 the pack holding a byte it copies, so a byte
   * is copied O(log store bytes) times, and the packs stay a progression:
   * at most log2(largest / smallest) + 1 of them.
   */
  private packsToRoll(weight: number): string[] {
    const sizes: Array<{ name: string | null; weight: number }> = [{ name: null, weight }];
    for (const [name, index] of this.packs) sizes.push({ name, weight: index.weight });
    sizes.sort((a, b) => a.weight - b.weight);
    let i = sizes.length - 1;
    while (i > 0 && sizes[i]!.weight >= GEOMETRIC * sizes[i - 1]!.weight) i--;
    let split = i === 0 ? 0 : i + 1, total = 0;
    for (let k = 0; k < split; k++) total += sizes[k]!.weight;
    while (split < sizes.length && sizes[split]!.weight < GEOMETRIC * total) total += sizes[split++]!.weight;
    const roll = sizes.slice(0, split);
    // An old store (many small packs) may need merging below a large batch: the batch then still goes in with them.
    return roll.some((s) => s.name === null) || roll.length > 1 ? roll.flatMap((s) => (s.name === null ? [] : [s.name])) : [];
  }

  /**
   * The blobs of `roll` (each once, as stored bytes, unverified as `collect`
   * copies them: a corrupt one stays reported by verify) in pack order, then
   * the batch. Read lazily, so a merge holds one write buffer, not the packs.
   */
  private *merged(roll: string[], batch: Iterable<{ digest: Digest; data: Uint8Array }>): Generator<{ digest: Digest; data: Uint8Array }> {
    const indexes = roll.map((name) => this.packs.get(name)!);
    for (const [k, name] of roll.entries()) {
      for (const e of indexes[k]!.entriesByOffset()) {
        const key = digestBytes(e.digest);
        // A blob in two packs (written by an older layerbox, or by racing processes) is kept once.
        let dup = false;
        for (let j = 0; j < k && !dup; j++) dup = indexes[j]!.mayHold(key) && indexes[j]!.find(key) !== null;
        if (dup) continue;
        yield { digest: e.digest, data: this.readRaw({ pack: name, ...e }) };
      }
    }
    yield* batch;
  }

  /**
   * packs.json lists the packs, so the directory can be served over plain
   * HTTP as a read-only store (range requests fetch indexes and single blobs).
   */
  private publishPackList(): void {
    this.rescan();
    const doc = { magic: 'layerbox-packs', version: 1, packs: [...this.packs.keys()].sort() };
    this.writeAtomic(this.p('packs.json'), new TextEncoder().encode(JSON.stringify(doc)));
  }

  async readRefs(): Promise<RefsDoc> {
    let text: string;
    try { text = readStoreFile(this.p('refs.json'), this.p('refs.json'), MAX_REFS_BYTES); } catch (e) { if (errCode(e) === 'ENOENT') return emptyRefs(); throw hostFailure(e, `reading ${this.p('refs.json')}`); }
    let doc: { magic?: unknown; version?: unknown; tags?: unknown; boxes?: unknown };
    try { doc = JSON.parse(text); } catch { throw new LayerboxError(`${this.p('refs.json')} is not valid JSON`, { code: 'CORRUPT' }); }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || doc.magic !== REFS_MAGIC) throw new LayerboxError(`${this.p('refs.json')} is not a layerbox refs file (bad magic)`, { code: 'CORRUPT' });
    if (doc.version !== 1) throw new LayerboxError(`${this.p('refs.json')} has unknown version ${JSON.stringify(doc.version)} (this layerbox reads version 1)`, { code: 'INVALID' });
    return checkRefs(doc, this.p('refs.json'));
  }

  async writeRefs(refs: RefsDoc): Promise<void> {
    const doc = { magic: REFS_MAGIC, version: 1, tags: refs.tags, boxes: refs.boxes, ...(refs.garbage ? { garbage: refs.garbage } : {}) };
    try { this.writeAtomic(this.p('refs.json'), Buffer.from(JSON.stringify(doc, null, 1) + '\n')); } catch (e) { throw hostFailure(e, `writing ${this.p('refs.json')}`); }
  }

  async listBlobs(): Promise<Array<{ digest: Digest; size: number }>> {
    return [...this.allBlobs()].map((b) => ({ digest: b.digest, size: b.length }));
  }

  /**
   * Removes dead blobs by rewriting the packs that hold them, and folds small
   * packs (one per flush or commit) together, so the host file count stays
   * O(packs), not O(flushes).
   */
  async deleteBlobs(keep: (digest: Digest) => boolean): Promise<{ blobs: number; bytes: number }> {
    try { return await this.collect(keep); } catch (e) { throw hostFailure(e, `rewriting the packs of the store ${this.location}`); }
  }

  private async collect(keep: (digest: Digest) => boolean): Promise<{ blobs: number; bytes: number }> {
    this.rescan();
    const dead = new Set<Digest>();
    let bytes = 0;
    for (const b of this.allBlobs()) if (!keep(b.digest)) { dead.add(b.digest); bytes += b.length; }
    const small = [...this.packs].filter(([, index]) => index.bytes < SMALL_PACK);
    const rewrite = [...this.packs].filter(([, index]) => [...index.entries()].some((e) => dead.has(e.digest)) || (small.length > 1 && index.bytes < SMALL_PACK));
    if (rewrite.length) {
      const seen = new Set<Digest>();
      const live: Array<{ digest: Digest; pack: string; offset: number; length: number }> = [];
      for (const [name, index] of rewrite) for (const e of index.entries()) if (!dead.has(e.digest) && !seen.has(e.digest)) { seen.add(e.digest); live.push({ pack: name, ...e }); }
      // Live blobs are copied as stored bytes, unverified: a corrupt one stays corrupt (and reported by verify)
      // rather than blocking every gc. The new pack is durable before the old ones go.
      const fresh = live.length ? (await this.writePack((function* (self) { for (const l of live) yield { digest: l.digest, data: self.readRaw(l) }; })(this))).name : null;
      // List the new pack before the old ones go: an HTTP reader of packs.json never misses a live blob.
      if (fresh) this.publishPackList();
      for (const [name] of rewrite) {
        if (name === fresh) continue;
        this.forget(name);
        fs.rmSync(this.p('packs', name), { force: true });
      }
      fsyncDir(this.p('packs'));
      this.publishPackList();
    }
    this.rescan();
    return { blobs: dead.size, bytes };
  }

  async verify(): Promise<BlobProblem[]> {
    const out: BlobProblem[] = [];
    for (const name of fs.readdirSync(this.p('packs')).sort()) {
      const where = `packs/${name}`;
      if (!PACK_NAME.test(name)) { out.push({ where, problem: 'unexpected file (not a pack)' }); continue; }
      let fd: number;
      try { fd = openStoreFile(this.p('packs', name), 'the pack'); } catch (e) {
        if (!(e instanceof LayerboxError)) throw e;
        out.push({ where, problem: e.message });
        continue;
      }
      try {
        const { index, indexHash } = readPackIndex(this.p('packs', name), fd, true);
        if (`${indexHash}.pack` !== name) out.push({ where, problem: `pack name does not match the sha256 of its index (${indexHash})` });
        for (const e of index.entries()) {
          if (digestFromBytes(sha256(readExact(fd, e.offset, e.length))) !== e.digest) out.push({ digest: e.digest, where, problem: 'content does not match its digest' });
        }
      } catch (e) {
        if (!(e instanceof LayerboxError)) throw e;
        out.push({ where, problem: e.message });
      } finally { fs.closeSync(fd); }
    }
    try { await this.readRefs(); } catch (e) { out.push({ where: 'refs.json', problem: (e as Error).message }); }
    return out;
  }

  async stats(): Promise<BackendStats> {
    let bytes = 0, blobs = 0;
    for (const b of this.allBlobs()) { bytes += b.length; blobs++; }
    // Iterative: a store's directories may be nested as deep as anyone made them.
    let files = 0;
    for (const todo = [this.location]; todo.length;) {
      const dir = todo.pop()!;
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) todo.push(path.join(dir, d.name)); else files++;
    }
    return { blobs, bytes, files };
  }

  async close(): Promise<void> {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }

  /** Box journals live in journals/, one file per box; an ephemeral box's scratch log in tmp/ (gone with its process). */
  openJournal(box: string | null): JournalLog {
    if (box === null) return new FileJournalLog(`${this.tmpName()}.jnl`, () => this.tmpName(), true);
    fs.mkdirSync(this.p('journals'), { recursive: true });
    return new FileJournalLog(this.p('journals', `${encodeURIComponent(box)}.jnl`), () => this.tmpName());
  }

  async sealJournal(box: string, chunks: ReadonlyArray<{ digest: Digest; offset: number; length: number }>): Promise<boolean> {
    const file = this.p('journals', `${encodeURIComponent(box)}.jnl`);
    let fd: number;
    try { fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW); } catch { return false; }
    let name: string;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size < HEADER || !Buffer.from(readExact(fd, 0, HEADER)).equals(Buffer.concat([PACK_MAGIC, Buffer.from([1, 0, 0, 0])]))) return false;
      for (const c of chunks) if (c.offset < HEADER || c.offset + c.length > st.size) return false;
      // The index and footer go after the journal's last byte: a scan stops there (not a batch), a pack reader starts there.
      const index = PackIndex.encode(chunks.map((c) => ({ digest: c.digest, offset: c.offset, length: c.length })));
      const foot = Buffer.alloc(FOOTER); foot.writeBigUInt64LE(BigInt(st.size), 0); SORTED_INDEX_MAGIC.copy(foot, 8);
      const tail = Buffer.concat([index, foot]);
      for (let done = 0; done < tail.length;) done += fs.writeSync(fd, tail, done, tail.length - done, st.size + done);
      fs.fsyncSync(fd);
      name = `${sha256(index).toString('hex')}.pack`;
      // A hard link, not a rename: until the refs point past the journal, it still applies.
      // The same index names the same blobs at the same places: one already there will do.
      try { fs.linkSync(file, this.p('packs', name)); } catch (e) { if (errCode(e) !== 'EEXIST') throw e; }
      fsyncDir(this.p('packs'));
      this.broken.delete(name);
      if (!this.packs.has(name)) this.addPack(name, PackIndex.parse(index, st.size, true, (why) => new LayerboxError(`pack packs/${name} is broken: ${why}`, { code: 'CORRUPT' })));
    } catch (e) {
      throw hostFailure(e, `sealing the journal of box ${box} as a pack in ${this.location}`);
    } finally { fs.closeSync(fd); }
    this.publishPackList();
    return true;
  }

  async readJournal(box: string): Promise<JournalSource | null> {
    const log = new FileJournalLog(this.p('journals', `${encodeURIComponent(box)}.jnl`), () => this.tmpName());
    return log.size ? log : null;
  }
}

/**
 * Opens (or, unless `create` is false, creates) a directory store. Refuses a
 * directory whose `layerbox-store.json` has an unknown magic or version, and a
 * non-empty directory that is not a store.
 */
export async function openDirBackend(dir: string, opts: { create?: boolean } = {}): Promise<DirBackend> {
  const root = path.resolve(dir);
  const marker = path.join(root, STORE_FILE);
  let entries: string[] | undefined;
  try { entries = fs.readdirSync(root); } catch (e) {
    if (errCode(e) === 'ENOTDIR') throw new LayerboxError(`${root} is not a directory`, { code: 'INVALID' });
    if (errCode(e) !== 'ENOENT') throw e;
  }
  if (entries?.includes(STORE_FILE)) {
    let doc: { magic?: unknown; version?: unknown };
    const text = readStoreFile(marker, marker, MAX_MARKER_BYTES);
    try { doc = JSON.parse(text); } catch { throw new LayerboxError(`${marker} is not valid JSON: not a layerbox store`, { code: 'CORRUPT' }); }
    if (typeof doc !== 'object' || doc === null || doc.magic !== STORE_MAGIC) throw new LayerboxError(`${root} is not a layerbox store (bad magic in ${STORE_FILE})`, { code: 'CORRUPT' });
    if (doc.version !== 1) throw new LayerboxError(`store ${root} has unknown format version ${JSON.stringify(doc.version)} (this layerbox reads version 1)`, { code: 'INVALID' });
  } else {
    if (opts.create === false) throw new LayerboxError(`no layerbox store at ${root}`, { code: 'NOT_FOUND' });
    // Only our own subdirectories may be there already: a creation that died before writing the marker.
    if (entries?.some((n) => n !== 'packs' && n !== 'tmp' && n !== 'leases' && n !== 'journals')) throw new LayerboxError(`refusing to use ${root} as a store: it is not empty and holds no ${STORE_FILE}`, { code: 'INVALID' });
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
    // The marker goes in last and atomically: a directory with it is a complete store.
    const tmp = path.join(root, 'tmp', `${process.pid}-init-${randomBytes(4).toString('hex')}`);
    const fd = fs.openSync(tmp, 'wx');
    try { fs.writeFileSync(fd, JSON.stringify({ magic: STORE_MAGIC, version: 1 }) + '\n'); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.renameSync(tmp, marker);
    fsyncDir(root);
  }
  for (const sub of ['packs', 'tmp']) {
    try { fs.mkdirSync(path.join(root, sub), { recursive: true }); } catch (e) {
      if (errCode(e) === 'EEXIST' || errCode(e) === 'ENOTDIR') throw new LayerboxError(`store ${root} is damaged: ${sub} is not a directory`, { code: 'INVALID' });
      throw e;
    }
  }
  return new DirBackend(root);
}
