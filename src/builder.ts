import type { Digest } from './digest.js';
import { LayerboxError } from './errno.js';
import { type LayerEntry, type LayerTable, comparePaths } from './layer.js';
import { isZero } from './overlay/content.js';
import { checkStoredPath, normalizeUserPath, parentOf } from './path.js';

export interface EntryMeta {
  mode?: number;
  uid?: number;
  gid?: number;
  /** Nanoseconds since the epoch. */
  mtime?: bigint;
}

/**
 * Builds one layer from a walk of some source (a host directory, a tar, a
 * list of files): checks names, adds missing parent directories, splits
 * file content into chunks and hands finished chunks to `sink` in batches.
 */
export class LayerBuilder {
  private entries = new Map<string, LayerEntry>();
  /** Directories added only as someone's parent: a later explicit entry may still set their metadata. */
  private implicit = new Set<string>();
  private pending = new Map<Digest, Uint8Array>();
  private pendingBytes = 0;
  /** Bytes of new chunk content seen (before dedup). */
  dataSize = 0;

  constructor(
    readonly chunkSize: number,
    private digest: (b: Uint8Array) => Digest,
    private sink: (blobs: Array<{ digest: Digest; data: Uint8Array }>) => Promise<void>,
    private batchBytes = 32 * 1024 * 1024,
  ) {
    this.entries.set('', { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0n });
  }

  private key(path: string): string {
    const p = normalizeUserPath(path);
    const raw = path.split('/').filter((c) => c !== '' && c !== '.');
    if (raw.includes('..')) throw new LayerboxError(`refusing path with "..": ${JSON.stringify(path)}`, { code: 'CORRUPT' });
    const bad = checkStoredPath(p);
    if (bad) throw new LayerboxError(`bad path ${JSON.stringify(path)}: ${bad}`, { code: 'CORRUPT' });
    return p;
  }

  private put(e: LayerEntry): void {
    const old = this.entries.get(e.path);
    if (old) {
      if (!(old.type === 'dir' && e.type === 'dir' && this.implicit.delete(e.path))) throw new LayerboxError(`duplicate entry ${JSON.stringify('/' + e.path)}`, { code: 'CORRUPT' });
      if (old.opaque) e.opaque = true;
    }
    for (let p = parentOf(e.path); e.path !== ''; p = parentOf(p)) {
      const pe = this.entries.get(p);
      if (pe) {
        if (pe.type !== 'dir') throw new LayerboxError(`${JSON.stringify('/' + e.path)} is inside ${JSON.stringify('/' + p)}, which is not a directory`, { code: 'CORRUPT' });
        break;
      }
      this.entries.set(p, { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0n });
      this.implicit.add(p);
    }
    this.entries.set(e.path, e);
  }

  private base(path: string, type: LayerEntry['type'], m: EntryMeta, defMode: number): LayerEntry {
    return { path: this.key(path), type, mode: (m.mode ?? defMode) & 0o7777, uid: m.uid ?? 0, gid: m.gid ?? 0, mtime: m.mtime ?? 0n };
  }

  addDir(path: string, m: EntryMeta = {}): void {
    const e = this.base(path, 'dir', m, 0o755);
    if (e.path === '') {
      Object.assign(this.entries.get('')!, { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime });
      return;
    }
    this.put(e);
  }

  addSymlink(path: string, target: string, m: EntryMeta = {}): void {
    if (target.includes('\0')) throw new LayerboxError(`symlink ${JSON.stringify(path)} has a NUL byte in its target`, { code: 'CORRUPT' });
    this.put({ ...this.base(path, 'symlink', m, 0o777), target });
  }

  /** A second name for a file added earlier in this layer. */
  addHardlink(path: string, target: string): void {
    const t = this.entries.get(this.key(target));
    if (!t || (t.type !== 'file' && t.type !== 'symlink')) throw new LayerboxError(`hard link ${JSON.stringify(path)} points to ${JSON.stringify(target)}, which is not a file of this layer`, { code: 'CORRUPT' });
    this.put({ ...this.base(path, 'hardlink', t, 0o644), target: t.path });
  }

  addWhiteout(path: string): void {
    this.put({ path: this.key(path), type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0n });
  }

  markOpaque(path: string): void {
    const e = this.entries.get(this.key(path));
    if (!e || e.type !== 'dir') throw new LayerboxError(`opaque marker for ${JSON.stringify(path)}, which is not a directory`, { code: 'CORRUPT' });
    e.opaque = true;
  }

  /** Adds a file; content as bytes or as a stream of pieces of any size. */
  async addFile(path: string, data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>, m: EntryMeta = {}): Promise<void> {
    const e = this.base(path, 'file', m, 0o644);
    // Sparse: zero chunks are holes and take no entry.
    const chunks = new Map<number, Digest>();
    let size = 0, index = 0;
    const cs = this.chunkSize;
    let buf = new Uint8Array(cs);
    let fill = 0;
    const emit = async (piece: Uint8Array): Promise<void> => {
      const k = index++;
      if (!isZero(piece)) {
        const d = this.digest(piece);
        chunks.set(k, d);
        this.dataSize += piece.length;
        if (!this.pending.has(d)) {
          this.pending.set(d, piece);
          this.pendingBytes += piece.length;
          if (this.pendingBytes >= this.batchBytes) await this.drain();
        }
      }
    };
    if (data instanceof Uint8Array) {
      // Whole content at hand: chunk it in place (copies, so the caller may reuse its buffer).
      for (let o = 0; o < data.length; o += cs) await emit(data.slice(o, Math.min(data.length, o + cs)));
      this.put({ ...e, size: data.length, chunks });
      return;
    }
    for await (const p of data) {
      let o = 0;
      size += p.length;
      while (o < p.length) {
        const n = Math.min(cs - fill, p.length - o);
        buf.set(p.subarray(o, o + n), fill);
        fill += n;
        o += n;
        if (fill === cs) {
          await emit(buf);
          buf = new Uint8Array(cs);
          fill = 0;
        }
      }
    }
    if (fill) await emit(buf.slice(0, fill));
    this.put({ ...e, size, chunks });
  }

  /** Writes out the chunks gathered so far. */
  async drain(): Promise<void> {
    if (!this.pending.size) return;
    const blobs = [...this.pending].map(([digest, data]) => ({ digest, data }));
    this.pending.clear();
    this.pendingBytes = 0;
    await this.sink(blobs);
  }

  get count(): number {
    return this.entries.size;
  }

  /** The finished table (after `drain`). */
  table(): LayerTable {
    const entries = [...this.entries.values()].sort((a, b) => comparePaths(a.path, b.path));
    // A hard link must come after the name it points at: the group's first name in
    // table order carries the content, the others point at it (a tar may list them in any order).
    const first = new Map<string, string>();
    const out = entries.map((e) => {
      if (e.type !== 'hardlink') return e;
      const target = e.target!;
      const head = first.get(target);
      if (head !== undefined) return { ...e, target: head };
      if (comparePaths(target, e.path) < 0) return e;
      first.set(target, e.path);
      const t = this.entries.get(target)!;
      return { ...t, path: e.path };
    });
    for (let i = 0; i < out.length; i++) {
      const head = first.get(out[i]!.path);
      if (head !== undefined) {
        const t = out[i]!;
        out[i] = { path: t.path, type: 'hardlink', mode: t.mode, uid: t.uid, gid: t.gid, mtime: t.mtime, target: head };
      }
    }
    return { kind: 'layer', chunkSize: this.chunkSize, entries: out };
  }
}
