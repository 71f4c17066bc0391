import type { Digest } from '../digest.js';
import { Errno, FsError, LayerboxError, describeErrno, hostErrno } from '../errno.js';
import { isZero } from '../overlay/content.js';
import type { DirNode, FileNode, Leaf, Node } from '../overlay/nodes.js';
import type { Overlay, OverlayJournal } from '../overlay/overlay.js';
import { utf8 } from '../text.js';
import type { JournalLog, JournalSource } from './backend.js';
import { type BatchChunk, type EdgeRec, type JournalHeader, type JournalScan, type MetaDoc, batchParts, concat, encodeBatch, encodeHeader, nodeRec, sameHeader } from './journal-format.js';

export { type JournalHeader, type JournalScan, journalApplies, replayTable, scanJournal } from './journal-format.js';

/*
 * The writing side of a box's journal (the format is journal-format.ts's):
 * on sync, what changed since the last one, made durable; past the cache,
 * written chunks spill to the log; past twice what it holds, the log is
 * compacted.
 */

/** Spilled chunks are appended in batches of about this many bytes. */
const SPILL_BATCH = 8 << 20;
/** A journal is compacted once it is past max(COMPACT_MIN, twice its live bytes). */
const COMPACT_MIN = 32 << 20;
/** Bytes of just-synced chunks kept in memory for rereads. */
const RECENT_BYTES = 8 << 20;
/** Default bytes of written data kept in memory before they spill to the journal. */
export const DEFAULT_CACHE_BYTES = 64 << 20;

// ---- writing ------------------------------------------------------------------------------

/** A host failure as the guest sees it: ENOSPC, EDQUOT, EIO... (never a trap). */
function asFsError(e: unknown, what: string): FsError {
  if (e instanceof FsError) return e;
  const errno = (e as { errno?: unknown })?.errno;
  const n = e instanceof LayerboxError && typeof errno === 'number' ? errno : hostErrno(e) ?? Errno.IO;
  return new FsError(n, `${what}: ${describeErrno(n)}`);
}

export interface BoxJournalOptions {
  /** Header of the journal (the box state it applies to); null: an ephemeral box's scratch log, never durable. */
  header: JournalHeader | null;
  /** What a scan of the existing log found (replayed already by the caller), or null to start a new one. */
  scan: JournalScan | null;
  digest: (b: Uint8Array) => Digest;
  /** Bytes of written data kept in memory before they spill to the log (default 64 MiB). */
  cacheBytes?: number;
  /** Random bytes (a salt per journal). */
  random: (n: number) => Uint8Array;
  /** Log bytes below which it is never compacted (default 32 MiB). */
  compactBytes?: number;
}

/**
 * Writes an overlay's changes to a box's journal: on sync, what changed
 * since the last sync, made durable; before a write that would pass the
 * cache, the written chunks, so memory follows the cache and not the bytes
 * written. In-memory state changes only after the log took the bytes: a
 * failed append leaves everything dirty, and the guest gets the errno.
 */
export class BoxJournal implements OverlayJournal {
  private index = new Map<Digest, { offset: number; length: number }>();
  private salt: Uint8Array;
  private seq: number;
  /** Bytes at which the log starts: 0 until the header is written. */
  private end: number;
  private compactAt: number;
  private readonly compactMin: number;
  private readonly cacheBytes: number;
  /** Nodes the log knows (from the snapshot or an earlier record): their changes are written as deltas. */
  private known = new WeakSet<Node>();
  /** Files whose last name went while they may still be open: their chunks stay readable (held weakly: a closed one goes). */
  private orphans = new Set<WeakRef<FileNode>>();
  private orphanSeen = new WeakSet<FileNode>();
  private recent = new Map<Digest, Uint8Array>();
  private recentBytes = 0;
  private root: number | null = null;
  private next = 0;

  constructor(private log: JournalLog, private o: BoxJournalOptions) {
    this.cacheBytes = o.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.compactMin = this.compactAt = o.compactBytes ?? COMPACT_MIN;
    if (o.scan && o.header && sameHeader(o.scan.header, o.header)) {
      this.salt = o.scan.salt;
      this.seq = o.scan.seq;
      this.end = o.scan.end;
      this.index = new Map(o.scan.chunks);
    } else {
      this.salt = o.random(8);
      this.seq = 0;
      this.end = 0;
    }
  }

  /** The bytes of a chunk kept in this journal, or null. */
  readChunk(d: Digest): Uint8Array | null {
    const hit = this.recent.get(d);
    if (hit) {
      this.recent.delete(d);
      this.recent.set(d, hit);
      return hit;
    }
    const at = this.index.get(d);
    if (!at) return null;
    // Checked when the log was scanned (a log from before), or written by this process: not hashed again.
    return this.log.read(at.offset, at.length);
  }

  /** Whether this journal keeps chunk `d`. */
  has(d: Digest): boolean {
    return this.recent.has(d) || this.index.has(d);
  }

  /** Chunks just synced, kept for the reads that usually follow (a database rereads the pages it wrote). */
  private remember(d: Digest, data: Uint8Array): void {
    if (this.recent.has(d)) return;
    this.recent.set(d, data);
    this.recentBytes += data.length;
    for (const [k, v] of this.recent) {
      if (this.recentBytes <= RECENT_BYTES) break;
      this.recent.delete(k);
      this.recentBytes -= v.length;
    }
  }

  /**
   * After a checkpoint folded the log into the store: the box now stands on
   * `header`'s state, the log is gone, and the next change starts a new one.
   */
  rebase(header: JournalHeader): void {
    this.o = { ...this.o, header };
    this.index.clear();
    this.end = 0;
    this.seq = 0;
    this.compactAt = this.compactMin;
  }

  /** The log, as a checkpoint reads it. */
  get source(): JournalSource {
    return this.log;
  }

  /** Lets go of the log's host handle (an ephemeral box's scratch log goes with it). */
  close(): void {
    this.log.close();
  }

  /** Bytes in the log now. */
  get size(): number {
    return this.end;
  }

  /**
   * Remembers what the overlay holds now as what the log already says (its
   * snapshot plus the replayed records). Call it once, right after the
   * overlay is made and before any change.
   */
  attach(ov: Overlay): void {
    this.known = new WeakSet();
    this.orphans.clear();
    this.orphanSeen = new WeakSet();
    this.root = ov.upper.root?.ino ?? null;
    this.next = ov.upper.nextIno;
    if (!ov.upper.root) return;
    const stack: DirNode[] = [ov.upper.root];
    this.known.add(ov.upper.root);
    for (let d = stack.pop(); d; d = stack.pop())
      for (const n of d.children.values()) {
        if (n.kind === 'whiteout' || this.known.has(n)) continue;
        this.known.add(n);
        if (n.kind === 'dir') stack.push(n);
      }
    // What the overlay did before it was attached (its constructor may create a root) is a change too.
  }

  beforeWrite(ov: Overlay, bytes: number): void {
    if (ov.changes.dirtyBytes + bytes <= this.cacheBytes) return;
    this.spill(ov);
  }

  /** Moves every written chunk out of memory into the log (not durable yet: a sync makes it so). */
  private spill(ov: Overlay): void {
    const items = this.dirtyChunks(ov);
    for (const f of this.liveOrphans()) {
      if (ov.changes.keys.has(f)) continue;
      for (const [k, c] of f.chunks) if (c instanceof Uint8Array) items.push({ f, k, data: c, digest: isZero(c) ? null : this.o.digest(c) });
    }
    for (let i = 0; i < items.length;) {
      const batch: typeof items = [];
      let bytes = 0;
      while (i < items.length && (bytes < SPILL_BATCH || !batch.length)) {
        bytes += items[i]!.data.length;
        batch.push(items[i++]!);
      }
      this.appendBatch(batch, null, false, 'writing to the box');
      this.settle(ov, batch);
    }
    ov.changes.dirtyBytes = 0;
    if (this.end > this.compactAt) this.tryCompact(ov);
  }

  sync(ov: Overlay): void {
    if (!this.o.header) return; // an ephemeral box: nothing is ever durable
    const root = ov.upper.root?.ino ?? null;
    if (ov.changes.empty && root === this.root && ov.upper.nextIno === this.next) return;
    const orphans = new Map<FileNode, Set<number>>();
    for (const [f, keys] of ov.changes.keys) if (f.nlink <= 0) orphans.set(f, keys);
    const items = this.dirtyChunks(ov, orphans);
    const chunkOf = this.chunkOf(items);
    const doc: MetaDoc = { r: root, n: ov.upper.nextIno, N: [], E: [] };
    const emitted: Array<DirNode | Leaf> = [];
    for (const n of ov.changes.nodes) {
      if (n.kind === 'file' && orphans.has(n)) continue;
      doc.N.push(nodeRec(n, !this.known.has(n), ov.changes.keys.get(n as FileNode) ?? null, chunkOf));
      emitted.push(n);
    }
    for (const [d, names] of ov.changes.edges)
      for (const name of names) {
        const c = d.children.get(name);
        doc.E.push([d.ino, name, c === undefined ? -1 : c.kind === 'whiteout' ? 0 : c.ino]);
      }
    this.appendBatch(items, utf8(JSON.stringify(doc)), true, 'fsync');
    this.settle(ov, items, true);
    for (const n of emitted) this.known.add(n);
    this.root = root;
    this.next = ov.upper.nextIno;
    ov.changes.clear();
    // Files with no name left (a program's unlinked temp files) are never made durable; while open, their
    // bytes in memory still count against the cache, and spills move them out.
    let carry = 0;
    for (const f of orphans.keys()) carry += this.addOrphan(f);
    ov.changes.dirtyBytes = carry;
    if (this.end > this.compactAt) this.tryCompact(ov);
  }

  /** Remembers a file with no name left; returns the bytes it holds in memory. */
  private addOrphan(f: FileNode): number {
    if (!this.orphanSeen.has(f)) {
      this.orphanSeen.add(f);
      this.orphans.add(new WeakRef(f));
    }
    let bytes = 0;
    for (const c of f.chunks.values()) if (c instanceof Uint8Array) bytes += c.length;
    return bytes;
  }

  /** The live orphans (dropping those collected or named again). */
  private liveOrphans(): FileNode[] {
    const out: FileNode[] = [];
    for (const w of [...this.orphans]) {
      const f = w.deref();
      if (!f || f.nlink > 0) this.orphans.delete(w);
      else out.push(f);
    }
    return out;
  }

  /** What a record says chunk k of a file holds once `items` are stored: their digests, else the file's own (null: a hole). */
  private chunkOf(items: ReadonlyArray<{ f: FileNode; k: number; digest: Digest | null }>): (f: FileNode, k: number) => Digest | null {
    const planned = new Map<FileNode, Map<number, Digest | null>>();
    for (const it of items) {
      let m = planned.get(it.f);
      if (!m) planned.set(it.f, (m = new Map()));
      m.set(it.k, it.digest);
    }
    return (f, k) => {
      const p = planned.get(f)?.get(k);
      if (p !== undefined) return p;
      const c = f.chunks.get(k);
      if (c === undefined) return null;
      if (c instanceof Uint8Array) return isZero(c) ? null : this.o.digest(c);
      return c;
    };
  }

  /** Written chunks still in memory, hashed; zero chunks become holes (they are not stored). */
  private dirtyChunks(ov: Overlay, skip?: ReadonlyMap<FileNode, unknown>): Array<{ f: FileNode; k: number; data: Uint8Array; digest: Digest | null }> {
    const out: Array<{ f: FileNode; k: number; data: Uint8Array; digest: Digest | null }> = [];
    for (const [f, keys] of ov.changes.keys) {
      if (skip?.has(f)) continue;
      for (const k of keys) {
        const c = f.chunks.get(k);
        if (c instanceof Uint8Array) out.push({ f, k, data: c, digest: isZero(c) ? null : this.o.digest(c) });
      }
    }
    return out;
  }

  /** After the log took them: chunks become digests (holes for zeros), and the box's usage follows. */
  private settle(ov: Overlay, items: ReadonlyArray<{ f: FileNode; k: number; data: Uint8Array; digest: Digest | null }>, keep = false): void {
    const before = new Map<FileNode, number>();
    for (const it of items) if (!before.has(it.f)) before.set(it.f, ov.fileUsage(it.f));
    for (const it of items) {
      if (it.f.chunks.get(it.k) !== it.data) continue;
      if (it.digest === null) it.f.chunks.delete(it.k);
      else {
        it.f.chunks.set(it.k, it.digest);
        if (keep) this.remember(it.digest, it.data);
      }
    }
    for (const [f, b] of before) ov.adjustUsage(ov.fileUsage(f) - b);
  }

  /** Appends one batch (the header first, if the log has none for this state); on failure nothing changed. */
  private appendBatch(items: ReadonlyArray<{ data: Uint8Array; digest: Digest | null }>, meta: Uint8Array | null, durable: boolean, what: string): void {
    const fresh: Array<{ digest: Digest; data: Uint8Array }> = [];
    const seen = new Set<Digest>();
    for (const it of items) if (it.digest && !this.index.has(it.digest) && !seen.has(it.digest)) {
      seen.add(it.digest);
      fresh.push({ digest: it.digest, data: it.data });
    }
    if (!fresh.length && !meta) return;
    try {
      if (!this.end) this.start();
      const { parts, at, length } = encodeBatch(this.salt, this.seq + 1, fresh, meta);
      if (this.log.size !== this.end) this.log.replace(this.prefix());
      this.log.append(parts, durable);
      fresh.forEach((c, i) => this.index.set(c.digest, { offset: this.end + at[i]!, length: c.data.length }));
      this.end += length;
      this.seq++;
    } catch (e) {
      throw asFsError(e, what);
    }
  }

  /** Starts a new log for this state: its header, written durably. */
  private start(): void {
    this.salt = this.o.random(8);
    this.seq = 0;
    this.index.clear();
    const head = encodeHeader(this.o.header ?? { box: '', image: `sha256:${'0'.repeat(64)}`, upper: null, created: '' }, this.salt);
    this.log.replace([head]);
    this.end = head.length;
  }

  /** The log up to `end` (when a failed append left more behind: rare), streamed from the log itself. */
  private *prefix(): Generator<Uint8Array> {
    for (let at = 0; at < this.end; at += 1 << 20) yield this.log.read(at, Math.min(1 << 20, this.end - at));
  }

  /**
   * Rewrites the log as one batch: the chunks the box still uses, then its
   * whole state. Garbage from rewritten data goes; the log stays under about
   * twice what it holds. A failure leaves the old log, which is still whole.
   */
  private tryCompact(ov: Overlay): void {
    try {
      this.compact(ov);
    } catch {
      // The old log is whole; try again once it has grown as much again.
    }
    this.compactAt = Math.max(this.compactAt, this.end * 2);
  }

  private compact(ov: Overlay): void {
    // Every chunk a reachable or still-open file uses must survive.
    const files: FileNode[] = [];
    const nodes: Array<DirNode | Leaf> = [];
    const edges: EdgeRec[] = [];
    const root = ov.upper.root;
    if (root) {
      nodes.push(root);
      const seen = new Set<Node>([root]);
      const stack: DirNode[] = [root];
      for (let d = stack.pop(); d; d = stack.pop())
        for (const [name, n] of d.children) {
          edges.push([d.ino, name, n.kind === 'whiteout' ? 0 : n.ino]);
          if (n.kind === 'whiteout' || seen.has(n)) continue;
          seen.add(n);
          nodes.push(n);
          if (n.kind === 'dir') stack.push(n);
          else if (n.kind === 'file') files.push(n);
        }
    }
    files.push(...this.liveOrphans());
    // Chunks still in memory go in as they are; the log's own are copied.
    const items = this.dirtyChunks(ov);
    const live = new Map<Digest, { offset: number; length: number } | Uint8Array>();
    for (const it of items) if (it.digest) live.set(it.digest, it.data);
    let liveBytes = 0;
    for (const f of files)
      for (const c of f.chunks.values()) {
        if (typeof c !== 'string' || live.has(c)) continue;
        const at = this.index.get(c);
        if (at) {
          live.set(c, at);
          liveBytes += at.length;
        }
      }
    if (this.end < Math.max(this.compactMin, 2 * liveBytes)) return;
    const chunkOf = this.chunkOf(items);
    const doc: MetaDoc = { r: root?.ino ?? null, n: ov.upper.nextIno, full: 1, N: nodes.map((n) => nodeRec(n, true, null, chunkOf)), E: edges };
    // Orphans are not in the state but keep their chunks (they are read until closed).
    const salt = this.o.random(8);
    const head = this.o.header ? encodeHeader(this.o.header, salt) : encodeHeader({ box: '', image: `sha256:${'0'.repeat(64)}`, upper: null, created: '' }, salt);
    // Streamed: the log's chunks are read one at a time as the new log is written.
    const chunks: BatchChunk[] = [...live].map(([digest, v]) => (v instanceof Uint8Array ? { digest, length: v.length, data: v } : { digest, length: v.length, data: () => this.log.read(v.offset, v.length) }));
    const b = batchParts(salt, 1, chunks, utf8(JSON.stringify(doc)));
    this.log.replace((function* () { yield head; yield* b.parts; })());
    this.salt = salt;
    this.seq = 1;
    this.index = new Map(chunks.map((c, i) => [c.digest, { offset: head.length + b.at[i]!, length: c.length }]));
    this.end = head.length + b.length;
    this.settle(ov, items);
    for (const n of nodes) this.known.add(n);
    this.root = doc.r;
    this.next = doc.n;
    ov.changes.clear();
  }
}

/** A journal kept in memory: memory stores, and boxes whose store cannot write synchronously. */
export class MemoryJournalLog implements JournalLog {
  private bytes: Uint8Array = new Uint8Array(0);
  private used = 0;
  /** With `durable` false, a durable append fails (ENOTSUP): nothing here outlives the page. */
  constructor(private durableOk = true) {}
  get size(): number {
    return this.used;
  }
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || offset + length > this.used) throw new LayerboxError(`journal read past its end (${offset}+${length} of ${this.used})`, { code: 'CORRUPT' });
    return this.bytes.slice(offset, offset + length);
  }
  append(parts: readonly Uint8Array[], durable: boolean): void {
    if (durable && !this.durableOk) throw new FsError(Errno.NOTSUP, 'fsync: this box is kept in memory until it is flushed (run guests in a worker to make fsync durable)');
    let n = 0;
    for (const p of parts) n += p.length;
    if (this.used + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.used + n, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
    }
    for (const p of parts) {
      this.bytes.set(p, this.used);
      this.used += p.length;
    }
  }
  replace(parts: Iterable<Uint8Array>): void {
    const all = concat([...parts]);
    this.bytes = all;
    this.used = all.length;
  }
  remove(): void {
    this.bytes = new Uint8Array(0);
    this.used = 0;
  }
  close(): void {}
}
