import type { Digest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import type { Chunk, ChunkMap, FileNode } from './nodes.js';

/**
 * Largest file a box holds unless its limits say otherwise (1 TiB): past it a
 * write or a truncate fails with EFBIG. Sparse content makes a file this
 * large cheap while it is mostly holes.
 */
export const DEFAULT_MAX_FILE_BYTES = 2 ** 40;

/** The indices of a chunk map in ascending order: O(chunks present), whatever the size. */
export function sortedIndices(m: ReadonlyMap<number, unknown>): number[] {
  return [...m.keys()].sort((a, b) => a - b);
}

/** A chunk map's entries in index order. */
export function sortedChunks<T>(m: ReadonlyMap<number, T>): Array<[number, T]> {
  return sortedIndices(m).map((k) => [k, m.get(k)!]);
}

/** Whether two chunk maps hold the same chunks at the same indices. */
export function sameChunks(a: ReadonlyMap<number, unknown>, b: ReadonlyMap<number, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, c] of a) if (b.get(k) !== c) return false;
  return true;
}

/**
 * Chunked file content. Chunk k covers bytes [k*size, min((k+1)*size, fileSize)).
 * A write replaces only the chunks it touches; the others stay shared with
 * the lower layer (copy-up is metadata only). Chunks are kept in a sparse
 * map: a hole costs nothing, whatever the file's size.
 */
export class FileContent {
  constructor(
    readonly chunkSize: number,
    private readChunk: (d: Digest) => Uint8Array,
    private readChunksInto?: (run: Digest[], lengths: number[], dest: Uint8Array, from: number) => boolean,
    /** Told of every chunk index whose content changes, with the bytes of any buffer created for it. */
    private onChunk: (f: FileNode, k: number, bytes: number) => void = () => {},
  ) {}

  private covered(size: number, k: number): number {
    return Math.max(0, Math.min(this.chunkSize, size - k * this.chunkSize));
  }

  /** The bytes of chunk k as stored (read-only). */
  chunkData(f: FileNode, k: number, size = f.size): Uint8Array {
    const c: Chunk | undefined = f.chunks.get(k);
    const len = this.covered(size, k);
    if (c === undefined) return new Uint8Array(len);
    if (c instanceof Uint8Array) return c;
    const data = this.readChunk(c);
    if (data.length !== len) throw new LayerboxError(`chunk ${c} has ${data.length} bytes where ${len} were expected`, { code: 'CORRUPT' });
    return data;
  }

  /** Chunk k as bytes this file owns (copied out of the shared chunk on first write). */
  private own(f: FileNode, k: number): Uint8Array {
    const c = f.chunks.get(k);
    if (c instanceof Uint8Array) return c;
    const len = this.covered(f.size, k);
    // The partial last chunk of a file past one chunk (a database growing by pages) gets its room at once.
    const out = this.buffer(k, len, k > 0 && len < this.chunkSize ? len : 0);
    if (c !== undefined) out.set(this.chunkData(f, k));
    f.chunks.set(k, out);
    this.onChunk(f, k, out.length);
    return out;
  }

  /**
   * A zeroed buffer of `len` bytes for chunk k, with room to grow when `grown`
   * (the length it grows from; 0: it does not grow) says so. Room doubles, up
   * to a chunk, so appends cost O(bytes), not O(chunk) each; past the first
   * chunk (a database growing by pages) it is a whole chunk at once.
   */
  private buffer(k: number, len: number, grown: number): Uint8Array {
    const cs = this.chunkSize;
    const cap = !grown ? len : k > 0 ? cs : Math.min(cs, Math.max(len, 2 * grown));
    return cap === len ? new Uint8Array(len) : new Uint8Array(new ArrayBuffer(cap), 0, len);
  }

  /** Changes the covered length of chunk k from its length under `oldSize` to `f.size`. */
  private resizeChunk(f: FileNode, k: number, oldSize: number): void {
    if (!f.chunks.has(k)) return;
    const old = this.chunkData(f, k, oldSize);
    const len = this.covered(f.size, k);
    let out: Uint8Array;
    if (f.chunks.get(k) instanceof Uint8Array && old.byteOffset === 0 && old.buffer.byteLength >= len) {
      // Room left in its buffer (a file growing by small appends): a longer view, the new bytes zeros.
      out = new Uint8Array(old.buffer, 0, len);
      if (len > old.length) out.fill(0, old.length);
    } else {
      out = this.buffer(k, len, len > old.length ? old.length : 0);
      out.set(old.subarray(0, len));
    }
    f.chunks.set(k, out);
    this.onChunk(f, k, out.length);
  }

  setSize(f: FileNode, size: number): void {
    const cs = this.chunkSize;
    const old = f.size;
    if (size === old) return;
    const n = Math.ceil(size / cs);
    if (size < old) {
      for (const k of [...f.chunks.keys()])
        if (k >= n) {
          f.chunks.delete(k);
          this.onChunk(f, k, 0);
        }
      f.size = size;
      if (n > 0 && size % cs) this.resizeChunk(f, n - 1, old);
    } else {
      // Growing adds holes: nothing is stored for them.
      const lastOld = Math.ceil(old / cs) - 1;
      f.size = size;
      if (lastOld >= 0 && old % cs) this.resizeChunk(f, lastOld, old);
    }
  }

  /** Bytes [offset, offset+length); with `view`, possibly a view into a chunk that the caller must copy at once. */
  read(f: FileNode, offset: number, length: number, view = false): Uint8Array {
    const end = Math.min(f.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const cs = this.chunkSize;
    const first = Math.floor(offset / cs), last = Math.floor((end - 1) / cs);
    if (first === last) {
      const data = this.chunkData(f, first);
      return view ? data.subarray(offset - first * cs, end - first * cs) : data.slice(offset - first * cs, end - first * cs);
    }
    const out = new Uint8Array(end - offset);
    for (let k = first; k <= last; k++) {
      const data = this.chunkData(f, k);
      const from = Math.max(offset, k * cs), to = Math.min(end, (k + 1) * cs);
      out.set(data.subarray(from - k * cs, to - k * cs), from - offset);
    }
    return out;
  }

  /** Copies bytes from `offset` straight into `dest` (up to its length, or the end of the file); returns how many. */
  readInto(f: FileNode, offset: number, dest: Uint8Array): number {
    const end = Math.min(f.size, offset + dest.length);
    if (offset >= end) return 0;
    const cs = this.chunkSize;
    const last = Math.floor((end - 1) / cs);
    for (let k = Math.floor(offset / cs); k <= last; k++) {
      const from = Math.max(offset, k * cs), to = Math.min(end, (k + 1) * cs);
      const c = f.chunks.get(k);
      if (c === undefined) {
        dest.fill(0, from - offset, to - offset);
        continue;
      }
      if (typeof c === 'string' && this.readChunksInto) {
        // A run of stored chunks: one read for all of them where the store keeps them side by side.
        const run: Digest[] = [c];
        while (k + run.length <= last) {
          const next = f.chunks.get(k + run.length);
          if (typeof next !== 'string') break;
          run.push(next);
        }
        const j = k + run.length - 1;
        const runTo = Math.min(end, (j + 1) * cs);
        const lengths = Array.from({ length: j - k + 1 }, (_, i) => this.covered(f.size, k + i));
        if (this.readChunksInto(run, lengths, dest.subarray(from - offset, runTo - offset), from - k * cs)) {
          k = j;
          continue;
        }
      }
      dest.set(this.chunkData(f, k).subarray(from - k * cs, to - k * cs), from - offset);
    }
    return end - offset;
  }

  /**
   * The whole file as pieces of at most `piece` bytes (a multiple of the
   * chunk size), for streaming it out: never more than one piece in memory,
   * and a stretch of holes is a view of one shared zero buffer, which the
   * consumer must not write to.
   */
  *pieces(f: FileNode, piece = 1 << 20): Generator<Uint8Array> {
    const cs = this.chunkSize;
    const per = Math.max(1, Math.floor(piece / cs));
    const size = f.size;
    const zeros = new Uint8Array(per * cs);
    for (let k = 0; k * cs < size; k += per) {
      const from = k * cs, to = Math.min(size, (k + per) * cs);
      let any = false;
      for (let j = k; j < k + per && !any; j++) any = f.chunks.has(j);
      yield any ? this.read(f, from, to - from) : zeros.subarray(0, to - from);
    }
  }

  write(f: FileNode, offset: number, data: Uint8Array): void {
    if (!data.length) return;
    const end = offset + data.length;
    if (end > f.size) this.setSize(f, end);
    const cs = this.chunkSize;
    for (let k = Math.floor(offset / cs); k <= Math.floor((end - 1) / cs); k++) {
      const buf = this.own(f, k);
      const from = Math.max(offset, k * cs), to = Math.min(end, (k + 1) * cs);
      buf.set(data.subarray(from - offset, to - offset), from - k * cs);
    }
  }
}

/** True when every byte is zero (such chunks are stored as holes). */
export function isZero(b: Uint8Array): boolean {
  let i = 0;
  // Four bytes at a time where aligned: gigabytes of holes pass through here on import and export.
  if (b.byteOffset % 4 === 0 && b.length >= 64) {
    const words = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
    for (let j = 0; j < words.length; j++) if (words[j]) return false;
    i = words.length << 2;
  }
  for (; i < b.length; i++) if (b[i]) return false;
  return true;
}

/** Splits bytes into chunks of `chunkSize`, zeros as holes, the rest as (digest, bytes). */
export function splitChunks(data: Uint8Array, chunkSize: number, digest: (b: Uint8Array) => Digest): { chunks: ChunkMap<Digest>; blobs: Map<Digest, Uint8Array> } {
  const chunks: ChunkMap<Digest> = new Map();
  const blobs = new Map<Digest, Uint8Array>();
  for (let o = 0; o < data.length; o += chunkSize) {
    const piece = data.subarray(o, Math.min(data.length, o + chunkSize));
    if (!isZero(piece)) {
      const d = digest(piece);
      chunks.set(o / chunkSize, d);
      blobs.set(d, piece);
    }
  }
  return { chunks, blobs };
}
