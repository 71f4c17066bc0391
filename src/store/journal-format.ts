import { type Digest, digestBytes, digestFromBytes, isDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import type { LayerTable } from '../layer.js';
import { type DirNode, type FileNode, type Leaf, type Meta, UPPER, WHITEOUT, newDir } from '../overlay/nodes.js';
import { upperToTable } from '../overlay/snapshot.js';
import { type UpperState, mountUpper } from '../overlay/tree.js';
import { checkName } from '../path.js';
import { concatBytes, fromUtf8, utf8 } from '../text.js';
import type { JournalSource } from './backend.js';

/*
 * A box's journal: the upper's changes since its last checkpoint, appended
 * as they happen, so that fsync costs what changed, not the size of the upper.
 *
 *   header   "LBXPACK\0" u32 1 (a pack's header), "LBXJRNL\0" u32 version, salt[8], u32 n, JSON {box,image,upper,created}, u32 crc
 *   batch*   u32 BATCH, salt[8], u32 seq, u32 payload bytes, payload, u32 crc
 *   payload  records: 1 CHUNK digest[32] u32 n bytes[n] | 2 META u32 n JSON[n]
 *
 * A batch is whole or ignored: its crc covers its header, the record
 * headers and the META text; chunk bytes are checked against their digest.
 * Batches are numbered from 1 and carry the journal's salt, so what a failed
 * append left after the end (even bytes a guest chose) is never taken for a
 * batch. A META record holds the nodes and names that changed, by inode
 * (see MetaDoc); replay applies them in order onto the box's upper snapshot.
 */

const MAGIC = 'LBXJRNL\0';
/**
 * A journal file starts as a pack does (the directory store's "LBXPACK\0",
 * version 1): a checkpoint can then turn the journal itself into a pack by
 * appending an index of its chunks, instead of copying them.
 */
const PACK_PREFIX = 'LBXPACK\0';
const PRE = 12;
const VERSION = 1;
const BATCH = 0x4a58424c; // "LBXJ"
const CHUNK = 1, META = 2;
export const BATCH_HEAD = 4 + 8 + 4 + 4;
/** Bounds on what a journal may hold, checked before anything is allocated. */
const MAX_HEADER = 64 << 10, MAX_META = 256 << 20, MAX_CHUNK = 64 << 20;

/** Which box state a journal applies to: a journal whose header differs from the box record is stale. */
export interface JournalHeader {
  box: string;
  image: Digest;
  upper: Digest | null;
  created: string;
}

// ---- crc32 ------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Running crc32 (IEEE): start with 0, feed pieces in order. */
export function crc32(crc: number, b: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const u32 = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
};
const getU32 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);

/** Joins byte arrays (the project's one helper). */
export const concat = concatBytes;

export function encodeHeader(h: JournalHeader, salt: Uint8Array): Uint8Array {
  const json = utf8(JSON.stringify(h));
  const head = concat([utf8(PACK_PREFIX), u32(1), utf8(MAGIC), u32(VERSION), salt, u32(json.length), json]);
  return concat([head, u32(crc32(0, head))]);
}

/** A chunk to put in a batch: its bytes now, or read when the batch is streamed. */
export interface BatchChunk {
  digest: Digest;
  length: number;
  data: Uint8Array | (() => Uint8Array);
}

/**
 * One batch (chunks, then an optional META) as parts streamed in order, with
 * where each chunk's bytes land relative to the batch start and its length.
 * Chunk bytes given as functions are read only as the parts are consumed.
 */
export function batchParts(salt: Uint8Array, seq: number, chunks: readonly BatchChunk[], meta: Uint8Array | null): { parts: Iterable<Uint8Array>; at: number[]; length: number } {
  let payload = 0;
  const at: number[] = [];
  for (const c of chunks) {
    at.push(BATCH_HEAD + payload + 37);
    payload += 37 + c.length;
  }
  if (meta) payload += 5 + meta.length;
  function* parts(): Generator<Uint8Array> {
    const head = concat([u32(BATCH), salt, u32(seq), u32(payload)]);
    let crc = crc32(0, head);
    yield head;
    for (const c of chunks) {
      const h = concat([Uint8Array.of(CHUNK), digestBytes(c.digest), u32(c.length)]);
      crc = crc32(crc, h);
      yield h;
      yield typeof c.data === 'function' ? c.data() : c.data;
    }
    if (meta) {
      const h = concat([Uint8Array.of(META), u32(meta.length)]);
      crc = crc32(crc32(crc, h), meta);
      yield h;
      yield meta;
    }
    yield u32(crc);
  }
  return { parts: parts(), at, length: BATCH_HEAD + payload + 4 };
}

/** One batch as its parts, all in memory (a sync's changes, a spill): written with one gathered write, not copied into one buffer. */
export function encodeBatch(salt: Uint8Array, seq: number, chunks: ReadonlyArray<{ digest: Digest; data: Uint8Array }>, meta: Uint8Array | null): { parts: Uint8Array[]; at: number[]; length: number } {
  const b = batchParts(salt, seq, chunks.map((c) => ({ digest: c.digest, length: c.data.length, data: c.data })), meta);
  return { parts: [...b.parts], at: b.at, length: b.length };
}

// ---- what a META record says ----------------------------------------------------------

/** One node's own state: [ino, kind, mode, uid, gid, atime, mtime, ctime, ...kind's fields]. */
type NodeRec =
  | [number, 'f', number, number, number, string, string, string, number, number, 0 | 1, Array<number | string>]
  | [number, 'l', number, number, number, string, string, string, string, number]
  | [number, 'd', number, number, number, string, string, string, 0 | 1, string | null];

/** A name in an upper directory: [dir ino, name, child ino | 0 (whiteout) | -1 (removed)]. */
export type EdgeRec = [number, string, number];

export interface MetaDoc {
  /** The upper root's inode (null: no upper root). */
  r: number | null;
  /** The next inode number the upper hands out. */
  n: number;
  /** A whole state: replay starts from an empty upper, not from the snapshot. */
  full?: 1;
  N: NodeRec[];
  E: EdgeRec[];
}

export function nodeRec(n: DirNode | Leaf, full: boolean, keys: Iterable<number> | null, chunkOf: (f: FileNode, k: number) => Digest | null): NodeRec {
  const m = n.meta;
  const t = [n.ino, m.mode, m.uid, m.gid, String(m.atime), String(m.mtime), String(m.ctime)] as const;
  if (n.kind === 'dir') return [t[0], 'd', t[1], t[2], t[3], t[4], t[5], t[6], n.opaque ? 1 : 0, n.redirect];
  if (n.kind === 'symlink') return [t[0], 'l', t[1], t[2], t[3], t[4], t[5], t[6], n.target, n.nlink];
  const list: Array<number | string> = [];
  for (const k of full ? n.chunks.keys() : keys ?? []) list.push(k, chunkOf(n, k) ?? '');
  return [t[0], 'f', t[1], t[2], t[3], t[4], t[5], t[6], n.size, n.nlink, full ? 1 : 0, list];
}

// ---- reading a journal -------------------------------------------------------------------

/** What a scan of a journal found. */
export interface JournalScan {
  header: JournalHeader;
  salt: Uint8Array;
  /** META records of the whole batches, in order. */
  metas: MetaDoc[];
  /** Chunks stored in the journal: where their bytes are. */
  chunks: Map<Digest, { offset: number; length: number }>;
  /** Batches read. */
  seq: number;
  /** Offset after the last whole batch: the next append goes here. */
  end: number;
}

const bad = (why: string) => new LayerboxError(`box journal is damaged: ${why}`, { code: 'CORRUPT' });

/**
 * Reads a journal's header and every whole batch. Stops at the first batch
 * that is torn, foreign or fails its checks (a crash mid-append): what
 * follows was never acknowledged. Null when there is no journal or its
 * header is unreadable. Reads in windows: memory does not follow the size.
 * `verify: false` skips hashing chunk bytes: only for a log this process
 * wrote itself and still holds (nothing in it can be torn).
 */
export async function scanJournal(src: JournalSource, hash: (b: Uint8Array) => Digest, opts: { verify?: boolean } = {}): Promise<JournalScan | null> {
  const size = src.size;
  if (size < PRE + 8 + 4 + 8 + 4 + 4) return null;
  const pre = await src.read(0, PRE + 8 + 4 + 8 + 4);
  if (fromUtf8(pre.subarray(0, 8)) !== PACK_PREFIX || fromUtf8(pre.subarray(PRE, PRE + 8)) !== MAGIC) throw bad('bad magic');
  const version = getU32(pre, PRE + 8);
  if (version !== VERSION) throw new LayerboxError(`box journal has unknown version ${version} (this layerbox reads version ${VERSION})`, { code: 'INVALID' });
  const salt = pre.slice(PRE + 12, PRE + 20);
  const jlen = getU32(pre, PRE + 20);
  const start = PRE + 24;
  if (jlen > MAX_HEADER || start + jlen + 4 > size) return null;
  const rest = await src.read(start, jlen + 4);
  if (crc32(crc32(0, pre), rest.subarray(0, jlen)) !== getU32(rest, jlen)) return null;
  let header: JournalHeader;
  try {
    const h = JSON.parse(fromUtf8(rest.subarray(0, jlen))) as Record<string, unknown>;
    if (typeof h.box !== 'string' || !isDigest(h.image) || (h.upper !== null && !isDigest(h.upper)) || typeof h.created !== 'string') return null;
    header = { box: h.box, image: h.image, upper: h.upper as Digest | null, created: h.created };
  } catch {
    return null;
  }
  const scan: JournalScan = { header, salt, metas: [], chunks: new Map(), seq: 0, end: start + jlen + 4 };
  for (;;) {
    const at = scan.end;
    if (at + BATCH_HEAD + 4 > size) break;
    const head = await src.read(at, BATCH_HEAD);
    if (getU32(head, 0) !== BATCH || !sameBytes(head.subarray(4, 12), salt) || getU32(head, 12) !== scan.seq + 1) break;
    const payload = getU32(head, 16);
    if (at + BATCH_HEAD + payload + 4 > size) break;
    const got = await readBatch(src, at + BATCH_HEAD, payload, crc32(0, head), opts.verify === false ? null : hash);
    if (!got) break;
    for (const [d, loc] of got.chunks) scan.chunks.set(d, loc);
    if (got.meta) scan.metas.push(got.meta);
    scan.seq++;
    scan.end = at + BATCH_HEAD + payload + 4;
  }
  return scan;
}

async function readBatch(src: JournalSource, from: number, payload: number, crc: number, hash: ((b: Uint8Array) => Digest) | null): Promise<{ chunks: Map<Digest, { offset: number; length: number }>; meta: MetaDoc | null } | null> {
  const chunks = new Map<Digest, { offset: number; length: number }>();
  let meta: Uint8Array | null = null;
  let at = from;
  const end = from + payload;
  while (at < end) {
    const t = (await src.read(at, 1))[0];
    if (t === CHUNK) {
      if (at + 37 > end) return null;
      const h = await src.read(at, 37);
      const n = getU32(h, 33);
      if (n > MAX_CHUNK || at + 37 + n > end) return null;
      crc = crc32(crc, h);
      const digest = digestFromBytes(h.subarray(1, 33));
      // The bytes themselves are checked against their digest: a torn write shows here.
      if (hash && hash(await src.read(at + 37, n)) !== digest) return null;
      chunks.set(digest, { offset: at + 37, length: n });
      at += 37 + n;
    } else if (t === META) {
      if (meta || at + 5 > end) return null;
      const h = await src.read(at, 5);
      const n = getU32(h, 1);
      if (n > MAX_META || at + 5 + n > end) return null;
      meta = await src.read(at + 5, n);
      crc = crc32(crc32(crc, h), meta);
      at += 5 + n;
    } else return null;
  }
  if (at !== end || crc !== getU32(await src.read(end, 4), 0)) return null;
  let doc: MetaDoc | null = null;
  if (meta) {
    try {
      doc = JSON.parse(fromUtf8(meta)) as MetaDoc;
    } catch {
      throw bad('a record that passed its checksum is not JSON');
    }
  }
  return { chunks, meta: doc };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- replay ------------------------------------------------------------------------------

const isIno = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isTime = (v: unknown): v is string => typeof v === 'string' && /^-?\d{1,25}$/.test(v);
const isU = (v: unknown, max = 2 ** 53 - 1): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;

/** Every node of an upper tree by inode (iterative: a tree may be deeper than the JS stack). */
function nodesOf(upper: UpperState): Map<number, DirNode | Leaf> {
  const nodes = new Map<number, DirNode | Leaf>();
  if (!upper.root) return nodes;
  nodes.set(upper.root.ino, upper.root);
  const stack: DirNode[] = [upper.root];
  for (let d = stack.pop(); d; d = stack.pop())
    for (const n of d.children.values()) {
      if (n.kind === 'whiteout') continue;
      nodes.set(n.ino, n);
      if (n.kind === 'dir') stack.push(n);
    }
  return nodes;
}

/** Applies one META record to a node map (mutating it); returns the root and next inode it names. */
function applyMeta(nodes: Map<number, DirNode | Leaf>, doc: MetaDoc, chunkSize: number): { root: number | null; next: number } {
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.N) || !Array.isArray(doc.E)) throw bad('a record lacks its nodes or names');
  if (!(doc.r === null || isIno(doc.r)) || !isIno(doc.n)) throw bad('a record has a bad root or inode counter');
  if (doc.full) nodes.clear();
  for (const r of doc.N) {
    if (!Array.isArray(r) || !isIno(r[0]) || !isU(r[2], 0o7777) || !isU(r[3], 2 ** 32) || !isU(r[4], 2 ** 32) || !isTime(r[5]) || !isTime(r[6]) || !isTime(r[7])) throw bad('a node record is malformed');
    const meta: Meta = { mode: r[2], uid: r[3], gid: r[4], atime: BigInt(r[5]), mtime: BigInt(r[6]), ctime: BigInt(r[7]) };
    const old = nodes.get(r[0]);
    if (r[1] === 'd') {
      if (!(r[8] === 0 || r[8] === 1) || !(r[9] === null || typeof r[9] === 'string')) throw bad('a directory record is malformed');
      const d = old?.kind === 'dir' ? old : newDir(UPPER, r[0], meta, null, '');
      d.meta = meta;
      d.opaque = r[8] === 1;
      d.redirect = r[9];
      nodes.set(r[0], d);
    } else if (r[1] === 'l') {
      if (typeof r[8] !== 'string' || !isU(r[9], 2 ** 32)) throw bad('a symlink record is malformed');
      const l = old?.kind === 'symlink' ? old : { kind: 'symlink' as const, ino: r[0], meta, layer: UPPER, target: '', nlink: 0, paths: [] };
      l.meta = meta;
      l.target = r[8];
      l.nlink = r[9];
      nodes.set(r[0], l);
    } else if (r[1] === 'f') {
      if (!isU(r[8]) || !isU(r[9], 2 ** 32) || !(r[10] === 0 || r[10] === 1) || !Array.isArray(r[11]) || r[11].length % 2) throw bad('a file record is malformed');
      if (r[10] === 0 && old?.kind !== 'file') throw bad(`a change to file ${r[0]}, which the journal never created`);
      const f: FileNode = old?.kind === 'file' && r[10] === 0 ? old : { kind: 'file', ino: r[0], meta, layer: UPPER, size: 0, chunks: new Map(), nlink: 0, paths: [] };
      f.meta = meta;
      f.size = r[8];
      f.nlink = r[9];
      if (r[10] === 1) f.chunks = new Map();
      const list = r[11];
      for (let i = 0; i < list.length; i += 2) {
        const k = list[i], d = list[i + 1];
        if (!isU(k)) throw bad('a chunk index is malformed');
        if (d === '') f.chunks.delete(k);
        else if (isDigest(d) && k * chunkSize < f.size) f.chunks.set(k, d);
        else throw bad('a chunk digest is malformed');
      }
      nodes.set(r[0], f);
    } else throw bad('a node record has an unknown kind');
  }
  for (const e of doc.E) {
    if (!Array.isArray(e) || !isIno(e[0]) || typeof e[1] !== 'string' || checkName(e[1]) || !(e[2] === -1 || isIno(e[2]))) throw bad('a name record is malformed');
    const d = nodes.get(e[0]);
    if (d?.kind !== 'dir') throw bad(`a name in ${e[0]}, which is not a directory of the upper`);
    if (e[2] === -1) d.children.delete(e[1]);
    else if (e[2] === 0) d.children.set(e[1], WHITEOUT);
    else {
      const c = nodes.get(e[2]);
      if (!c) throw bad(`a name for inode ${e[2]}, which the journal never created`);
      d.children.set(e[1], c);
      if (c.kind === 'dir') {
        c.parent = d;
        c.name = e[1];
      }
    }
  }
  return { root: doc.r, next: doc.n };
}

/**
 * The upper a box has after its snapshot (`base`, null: empty) and its
 * journal's META records, as a table (what a checkpoint stores) — or null
 * when the upper is empty. Refuses a graph that is not a tree.
 */
export function replayTable(base: LayerTable | null, metas: readonly MetaDoc[], chunkSize: number): LayerTable | null {
  const upper: UpperState = base ? mountUpper(base) : { root: null, nextIno: 0, redirects: new Map() };
  if (!metas.length) return base;
  const nodes = nodesOf(upper);
  let root = upper.root?.ino ?? null, next = upper.nextIno;
  for (const m of metas) ({ root, next } = applyMeta(nodes, m, chunkSize));
  const r = root === null ? null : nodes.get(root);
  if (root !== null && r?.kind !== 'dir') throw bad('the root is not a directory');
  if (!r || r.kind !== 'dir') return null;
  // Every directory reached once from the root: a cycle or a directory under two names is damage.
  const seen = new Set<DirNode>([r]);
  const stack: DirNode[] = [r];
  for (let d = stack.pop(); d; d = stack.pop())
    for (const [name, c] of d.children) {
      if (c.kind !== 'dir') continue;
      if (seen.has(c) || c.parent !== d || c.name !== name) throw bad(`directory ${c.ino} is reached twice`);
      seen.add(c);
      stack.push(c);
    }
  r.parent = null;
  r.name = '';
  return upperToTable({ root: r, nextIno: next, redirects: new Map() }, 'upper', chunkSize, r);
}

export function sameHeader(a: JournalHeader, b: JournalHeader): boolean {
  return a.box === b.box && a.image === b.image && a.upper === b.upper && a.created === b.created;
}

/** Whether a scanned journal belongs to this box state (a stale one is left by a crash after its checkpoint). */
export function journalApplies(scan: JournalScan | null, header: JournalHeader): scan is JournalScan {
  return !!scan && sameHeader(scan.header, header);
}

