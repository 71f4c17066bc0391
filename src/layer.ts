import { Reader, Writer, readHeader, writeHeader } from './codec.js';
import { type Digest, digestBytes, digestFromBytes } from './digest.js';
import { LayerboxError } from './errno.js';
import { checkStoredPath, parentOf } from './path.js';

/** Default unit of copy-on-write, storage and dedup. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout';

/**
 * One row of a layer's table. Paths are relative to the root, `/`-separated,
 * without a leading slash; the root itself is `''`.
 * `chunks` maps a chunk's index to its digest; an index that is absent is a
 * hole (zeros), so a sparse file costs what it holds, not its size.
 */
export interface LayerEntry {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in nanoseconds since the epoch. */
  mtime: bigint;
  size?: number;
  chunks?: Map<number, Digest>;
  /** Symlink target, or the path of the hard link's first name in this layer. */
  target?: string;
  /** Directory: hides everything below it in lower layers. */
  opaque?: boolean;
  /** Directory: its lower contents come from this path (a rename across layers). */
  redirect?: string;
  /** Upper snapshots only: the entry's inode number and other times. */
  ino?: number;
  atime?: bigint;
  ctime?: bigint;
}

export interface LayerTable {
  kind: 'layer' | 'upper';
  chunkSize: number;
  entries: LayerEntry[];
  /** Upper snapshots only: the next inode number to hand out. */
  nextIno?: number;
}

const MAGIC = { layer: 'LBXLAYER', upper: 'LBXUPPER' } as const;
/**
 * Whole-table versions. v1: one byte (and a digest) per chunk of a file; then
 * only the chunks present, each after the count of holes before it (see
 * writeChunks): LBXUPPER v2, LBXLAYER v3 (LBXLAYER v2 is a tree root, see
 * layer-tree.ts). Older versions still read.
 */
const VERSION = { layer: 3, upper: 2 } as const;
const VERSIONS = { layer: [1, 3], upper: [1, 2] } as const;
/** The version from which a file's chunks are stored sparse. */
const sparseFrom = (kind: 'layer' | 'upper', v: number): boolean => v >= VERSION[kind];
const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'whiteout'];
const F_OPAQUE = 1, F_REDIRECT = 2;

/** Total order on stored paths (by code unit), parents first. */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Encodes a table; entries must already be sorted and valid. Deterministic: same table, same bytes. */
export function encodeLayer(t: LayerTable): Uint8Array {
  const w = new Writer();
  writeHeader(w, MAGIC[t.kind], VERSION[t.kind]);
  w.uint(t.chunkSize).uint(t.entries.length);
  if (t.kind === 'upper') w.uint(t.nextIno ?? 0);
  for (const e of t.entries) {
    w.str(e.path).u8(TYPES.indexOf(e.type));
    if (e.type === 'whiteout') continue;
    w.u8((e.opaque ? F_OPAQUE : 0) | (e.redirect !== undefined ? F_REDIRECT : 0));
    w.uint(e.mode).uint(e.uid).uint(e.gid).big(e.mtime);
    if (t.kind === 'upper') w.uint(e.ino ?? 0).big(e.atime ?? e.mtime).big(e.ctime ?? e.mtime);
    switch (e.type) {
      case 'file':
        w.uint(e.size ?? 0);
        writeChunks(w, e.chunks);
        break;
      case 'symlink':
      case 'hardlink':
        w.str(e.target ?? '');
        break;
      case 'dir':
        if (e.redirect !== undefined) w.str(e.redirect);
        break;
    }
  }
  return w.finish();
}

/**
 * Decodes and validates a table: known magic and version, sorted unique
 * normalised paths, every parent present as a directory, hard links to an
 * earlier file of the same layer, chunk counts that match sizes.
 */
export function decodeLayer(bytes: Uint8Array, what: string, expect?: 'layer' | 'upper'): LayerTable {
  const r = new Reader(bytes, what);
  const kind: 'layer' | 'upper' = bytes.length >= 8 && String.fromCharCode(...bytes.subarray(0, 8)) === MAGIC.upper ? 'upper' : 'layer';
  if (expect && kind !== expect) r.fail(`expected a ${expect} table, found a ${kind} table`);
  const sparse = sparseFrom(kind, readHeader(r, MAGIC[kind], VERSIONS[kind]));
  const chunkSize = r.uint();
  if (chunkSize < 1 || chunkSize > 64 * 1024 * 1024) r.fail(`bad chunk size ${chunkSize}`);
  const count = r.uint();
  const nextIno = kind === 'upper' ? r.uint() : undefined;
  const entries: LayerEntry[] = [];
  const types = new Map<string, EntryType>();
  let prev: string | null = null;
  for (let i = 0; i < count; i++) {
    const path = r.str();
    const t = TYPES[r.u8()];
    if (!t) r.fail(`unknown entry type for ${JSON.stringify(path)}`);
    const bad = checkStoredPath(path);
    if (bad) r.fail(`bad path ${JSON.stringify(path)}: ${bad}`);
    if (prev !== null && comparePaths(prev, path) >= 0) r.fail(`entries not sorted or duplicated at ${JSON.stringify(path)}`);
    prev = path;
    if (path !== '') {
      const pt = types.get(parentOf(path));
      if (pt !== 'dir') r.fail(`${JSON.stringify(path)} has no parent directory in the layer`);
    } else if (t !== 'dir') r.fail('the root must be a directory');
    types.set(path, t);
    const e: LayerEntry = { path, type: t, mode: 0, uid: 0, gid: 0, mtime: 0n };
    if (t !== 'whiteout') {
      const flags = r.u8();
      e.mode = r.uint(); e.uid = r.uint(); e.gid = r.uint(); e.mtime = r.big();
      if (kind === 'upper') { e.ino = r.uint(); e.atime = r.big(); e.ctime = r.big(); }
      if (flags & F_OPAQUE) e.opaque = true;
      if (t === 'file') {
        e.size = r.uint();
        e.chunks = readChunks(r, sparse, e.size, chunkSize, path);
      } else if (t === 'symlink' || t === 'hardlink') {
        e.target = r.str();
        if (t === 'hardlink' && types.get(e.target) !== 'file' && types.get(e.target) !== 'symlink')
          r.fail(`hard link ${JSON.stringify(path)} points to ${JSON.stringify(e.target)}, not an earlier file of this layer`);
        if (t === 'symlink' && e.target.includes('\0')) r.fail(`symlink ${JSON.stringify(path)} has a NUL byte`);
      } else if (t === 'dir' && flags & F_REDIRECT) {
        e.redirect = r.str();
        const rb = checkStoredPath(e.redirect);
        if (rb || e.redirect === '') r.fail(`bad redirect ${JSON.stringify(e.redirect)}`);
      }
    }
    entries.push(e);
  }
  if (!r.done) r.fail('trailing bytes');
  if (count === 0 || entries[0]!.path !== '') throw new LayerboxError(`${what}: the table has no root directory`, { code: 'CORRUPT' });
  return { kind, chunkSize, entries, nextIno };
}

/** Every chunk digest a table references (for gc and fsck). */
export function chunksOf(t: LayerTable): Digest[] {
  const out: Digest[] = [];
  for (const e of t.entries) if (e.chunks) for (const c of e.chunks.values()) out.push(c);
  return out;
}

/** A file's chunks stored sparse: the count present, then for each in index order the holes before it and its digest. */
export function writeChunks(w: Writer, chunks: ReadonlyMap<number, Digest> | undefined): void {
  const ks = chunks ? [...chunks.keys()].sort((a, b) => a - b) : [];
  w.uint(ks.length);
  let next = 0;
  for (const k of ks) {
    w.uint(k - next).bytes(digestBytes(chunks!.get(k)!));
    next = k + 1;
  }
}

/**
 * Reads a file's chunks: dense (v1) lists every chunk (a byte each, then a
 * digest where present); sparse only those present. Indices must fall within the size;
 * the map holds only what the bytes name, so a huge size costs nothing.
 */
export function readChunks(r: Reader, sparse: boolean, size: number, chunkSize: number, what: string): Map<number, Digest> {
  const total = chunkCount(size, chunkSize);
  const out = new Map<number, Digest>();
  if (!sparse) {
    const n = r.uint();
    if (n !== total) r.fail(`${JSON.stringify(what)}: ${n} chunks for ${size} bytes`);
    for (let k = 0; k < n; k++) if (r.u8()) out.set(k, digestFromBytes(r.bytes(32)));
    return out;
  }
  const n = r.uint();
  if (n > total) r.fail(`${JSON.stringify(what)}: ${n} chunks for ${size} bytes`);
  let next = 0;
  for (let i = 0; i < n; i++) {
    const k = next + r.uint();
    if (k >= total) r.fail(`${JSON.stringify(what)}: chunk ${k} past the end of ${size} bytes`);
    out.set(k, digestFromBytes(r.bytes(32)));
    next = k + 1;
  }
  return out;
}
