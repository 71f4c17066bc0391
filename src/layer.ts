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
 * A chunk is a digest, or `null` for a run of zeros (a hole).
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
  chunks?: (Digest | null)[];
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
const VERSION = 1;
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
  writeHeader(w, MAGIC[t.kind], VERSION);
  w.uint(t.chunkSize).uint(t.entries.length);
  if (t.kind === 'upper') w.uint(t.nextIno ?? 0);
  for (const e of t.entries) {
    w.str(e.path).u8(TYPES.indexOf(e.type));
    if (e.type === 'whiteout') continue;
    w.u8((e.opaque ? F_OPAQUE : 0) | (e.redirect !== undefined ? F_REDIRECT : 0));
    w.uint(e.mode).uint(e.uid).uint(e.gid).big(e.mtime);
    if (t.kind === 'upper') w.uint(e.ino ?? 0).big(e.atime ?? e.mtime).big(e.ctime ?? e.mtime);
    switch (e.type) {
      case 'file': {
        const chunks = e.chunks ?? [];
        w.uint(e.size ?? 0).uint(chunks.length);
        for (const c of chunks) {
          if (c === null) w.u8(0);
          else w.u8(1).bytes(digestBytes(c));
        }
        break;
      }
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
  readHeader(r, MAGIC[kind], [VERSION]);
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
        const n = r.uint();
        if (n !== chunkCount(e.size, chunkSize)) r.fail(`${JSON.stringify(path)}: ${n} chunks for ${e.size} bytes`);
        e.chunks = [];
        for (let k = 0; k < n; k++) e.chunks.push(r.u8() ? digestFromBytes(r.bytes(32)) : null);
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
  if (count === 0 || entries[0]!.path !== '') throw new LayerboxError(`${what}: the table has no root directory`);
  return { kind, chunkSize, entries, nextIno };
}

/** Every chunk digest a table references (for gc and fsck). */
export function chunksOf(t: LayerTable): Digest[] {
  const out: Digest[] = [];
  for (const e of t.entries) for (const c of e.chunks ?? []) if (c) out.push(c);
  return out;
}
