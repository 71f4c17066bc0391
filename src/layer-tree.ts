/**
 * Stored layers as a tree of directory pages, so a layer mounts in time and
 * memory independent of its size: the layer blob (its digest is the layer's
 * id) holds the root directory and the layer's redirects; each directory's
 * entries are a page blob named by its digest, which the parent's entry
 * carries (like git trees). A mount reads the layer blob; a lookup reads the
 * pages along its path, each verified against its digest like any blob.
 *
 *   layer blob  "LBXLAYER" v2: chunkSize, entry count, root meta + flags,
 *               root page digest, redirects (origin, path)
 *   page blob   "LBXDIRPG" v2: entries sorted by name: name, type, and for
 *               all but whiteouts flags, mode, uid, gid, mtime, then
 *               file: size, chunks present (holes before each, digest;
 *               v1: a byte per chunk); symlink: target; hardlink: target path;
 *               dir: redirect (flag), page digest; a leaf with other names
 *               (hard links) lists them (flag)
 */
import { Reader, Writer, readHeader, writeHeader } from './codec.js';
import { type Digest, digestBytes, digestFromBytes } from './digest.js';
import { LayerboxError } from './errno.js';
import { type EntryType, type LayerEntry, type LayerTable, comparePaths, decodeLayer, encodeLayer, readChunks, writeChunks } from './layer.js';
import { baseName, checkName, checkStoredPath, joinPath, parentOf } from './path.js';

const LAYER_MAGIC = 'LBXLAYER';
const PAGE_MAGIC = 'LBXDIRPG';
const TREE_VERSION = 2;
/** v2: a file's chunks sparse (see writeChunks); v1 pages still read. */
const PAGE_VERSION = 2;
const PAGE_VERSIONS = [1, 2] as const;
const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'whiteout'];
const F_OPAQUE = 1, F_REDIRECT = 2, F_LINKS = 4;
/**
 * Most entries a layer may have. Pages are shared between identical
 * directories, so a hostile layer could name one page under itself again and
 * again (a "zip bomb" of directories); reading a whole layer stops here.
 */
export const MAX_LAYER_ENTRIES = 4_000_000;

/** One entry of a directory page, as stored: a layer entry named within its directory (a hard link's target stays a full path). */
export interface PageEntry extends Omit<LayerEntry, 'path' | 'ino' | 'atime' | 'ctime'> {
  name: string;
  /** Directories: the page of their entries. */
  page?: Digest;
  /** A file or symlink with hard links: the full paths of its other names. */
  links?: string[];
}

/** The layer blob of a tree-stored layer. */
export interface LayerRoot {
  chunkSize: number;
  entries: number;
  root: { mode: number; uid: number; gid: number; mtime: bigint; opaque: boolean };
  page: Digest;
  redirects: Array<{ origin: string; path: string }>;
}

/** Whether stored layer bytes are a tree root (v2) rather than a whole v1 table. */
export function isLayerTree(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  for (let i = 0; i < 8; i++) if (bytes[i] !== LAYER_MAGIC.charCodeAt(i)) return false;
  return new DataView(bytes.buffer, bytes.byteOffset + 8, 4).getUint32(0, true) === TREE_VERSION;
}

export function encodePage(entries: PageEntry[]): Uint8Array {
  const w = new Writer();
  writeHeader(w, PAGE_MAGIC, PAGE_VERSION);
  w.uint(entries.length);
  for (const e of entries) {
    w.str(e.name).u8(TYPES.indexOf(e.type));
    if (e.type === 'whiteout') continue;
    w.u8((e.opaque ? F_OPAQUE : 0) | (e.redirect !== undefined ? F_REDIRECT : 0) | (e.links?.length ? F_LINKS : 0));
    w.uint(e.mode).uint(e.uid).uint(e.gid).big(e.mtime);
    if (e.type === 'file') {
      w.uint(e.size ?? 0);
      writeChunks(w, e.chunks);
    } else if (e.type === 'symlink' || e.type === 'hardlink') w.str(e.target ?? '');
    else if (e.type === 'dir') {
      if (e.redirect !== undefined) w.str(e.redirect);
      w.bytes(digestBytes(e.page!));
    }
    if (e.links?.length) {
      w.uint(e.links.length);
      for (const l of e.links) w.str(l);
    }
  }
  return w.finish();
}

/** Decodes and validates one directory page: names valid, sorted and unique; chunk counts that match sizes. */
export function decodePage(bytes: Uint8Array, chunkSize: number, what: string): PageEntry[] {
  const r = new Reader(bytes, what);
  const version = readHeader(r, PAGE_MAGIC, PAGE_VERSIONS);
  const count = r.uint();
  const out: PageEntry[] = [];
  let prev: string | null = null;
  for (let i = 0; i < count; i++) {
    const name = r.str();
    const type = TYPES[r.u8()];
    if (!type) r.fail(`unknown entry type for ${JSON.stringify(name)}`);
    const bad = name === '' ? 'empty name' : checkName(name);
    if (bad) r.fail(`bad name ${JSON.stringify(name)}: ${bad}`);
    if (prev !== null && comparePaths(prev, name) >= 0) r.fail(`entries not sorted or duplicated at ${JSON.stringify(name)}`);
    prev = name;
    const e: PageEntry = { name, type, mode: 0, uid: 0, gid: 0, mtime: 0n };
    if (type !== 'whiteout') {
      const flags = r.u8();
      e.mode = r.uint(); e.uid = r.uint(); e.gid = r.uint(); e.mtime = r.big();
      if (flags & F_OPAQUE) e.opaque = true;
      if (type === 'file') {
        e.size = r.uint();
        e.chunks = readChunks(r, version >= 2, e.size, chunkSize, name);
      } else if (type === 'symlink' || type === 'hardlink') {
        e.target = r.str();
        if (e.target.includes('\0')) r.fail(`${JSON.stringify(name)} has a NUL byte in its target`);
        if (type === 'hardlink' && (e.target === '' || checkStoredPath(e.target))) r.fail(`hard link ${JSON.stringify(name)} has a bad target ${JSON.stringify(e.target)}`);
      } else if (type === 'dir') {
        if (flags & F_REDIRECT) {
          e.redirect = r.str();
          if (e.redirect === '' || checkStoredPath(e.redirect)) r.fail(`bad redirect ${JSON.stringify(e.redirect)}`);
        }
        e.page = digestFromBytes(r.bytes(32));
      }
      if (flags & F_LINKS) {
        if (type !== 'file' && type !== 'symlink') r.fail(`${JSON.stringify(name)}: only files and symlinks have hard links`);
        const n = r.uint();
        e.links = [];
        for (let k = 0; k < n; k++) {
          const l = r.str();
          if (l === '' || checkStoredPath(l)) r.fail(`${JSON.stringify(name)}: bad hard link path ${JSON.stringify(l)}`);
          e.links.push(l);
        }
      }
    }
    out.push(e);
  }
  if (!r.done) r.fail('trailing bytes');
  return out;
}

export function encodeRoot(root: LayerRoot): Uint8Array {
  const w = new Writer();
  writeHeader(w, LAYER_MAGIC, TREE_VERSION);
  w.uint(root.chunkSize).uint(root.entries);
  w.u8(root.root.opaque ? F_OPAQUE : 0).uint(root.root.mode).uint(root.root.uid).uint(root.root.gid).big(root.root.mtime);
  w.bytes(digestBytes(root.page));
  w.uint(root.redirects.length);
  for (const r of root.redirects) w.str(r.origin).str(r.path);
  return w.finish();
}

export function decodeRoot(bytes: Uint8Array, what: string): LayerRoot {
  const r = new Reader(bytes, what);
  readHeader(r, LAYER_MAGIC, [TREE_VERSION]);
  const chunkSize = r.uint();
  if (chunkSize < 1 || chunkSize > 64 * 1024 * 1024) r.fail(`bad chunk size ${chunkSize}`);
  const entries = r.uint();
  if (entries < 1 || entries > MAX_LAYER_ENTRIES) r.fail(`a layer of ${entries} entries (at most ${MAX_LAYER_ENTRIES})`);
  const flags = r.u8();
  const root = { opaque: !!(flags & F_OPAQUE), mode: r.uint(), uid: r.uint(), gid: r.uint(), mtime: r.big() };
  const page = digestFromBytes(r.bytes(32));
  const n = r.uint();
  const redirects: LayerRoot['redirects'] = [];
  for (let i = 0; i < n; i++) {
    const origin = r.str(), path = r.str();
    if (origin === '' || checkStoredPath(origin) || path === '' || checkStoredPath(path)) r.fail(`bad redirect ${JSON.stringify(origin)} -> ${JSON.stringify(path)}`);
    redirects.push({ origin, path });
  }
  if (!r.done) r.fail('trailing bytes');
  return { chunkSize, entries, root, page, redirects };
}

/**
 * A (valid, sorted) layer table as a tree: the layer blob and every page
 * blob. Deterministic: the same table gives the same blobs.
 */
export function encodeLayerTree(t: LayerTable, digest: (b: Uint8Array) => Digest): { root: Uint8Array; pages: Array<{ digest: Digest; data: Uint8Array }> } {
  if (t.kind !== 'layer') throw new LayerboxError('only layers are stored as trees', { code: 'INVALID' });
  const rootEntry = t.entries[0];
  if (!rootEntry || rootEntry.path !== '' || rootEntry.type !== 'dir') throw new LayerboxError('a layer table needs a root directory', { code: 'INVALID' });
  const children = new Map<string, LayerEntry[]>();
  const links = new Map<string, string[]>();
  for (const e of t.entries) {
    if (e.path === '') continue;
    const p = parentOf(e.path);
    let list = children.get(p);
    if (!list) children.set(p, (list = []));
    list.push(e);
    if (e.type === 'hardlink') {
      let l = links.get(e.target!);
      if (!l) links.set(e.target!, (l = []));
      l.push(e.path);
    }
  }
  const pages: Array<{ digest: Digest; data: Uint8Array }> = [];
  const pageDigests = new Map<string, Digest>();
  const pageOf = (dir: string): Digest => {
    const list = (children.get(dir) ?? []).slice().sort((a, b) => comparePaths(baseName(a.path), baseName(b.path)));
    const entries: PageEntry[] = list.map((e) => {
      const p: PageEntry = { name: baseName(e.path), type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime };
      if (e.type === 'whiteout') return { name: p.name, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0n };
      if (e.type === 'file') {
        p.size = e.size ?? 0;
        p.chunks = e.chunks ?? new Map();
      } else if (e.type === 'symlink' || e.type === 'hardlink') p.target = e.target ?? '';
      else {
        if (e.opaque) p.opaque = true;
        if (e.redirect !== undefined) p.redirect = e.redirect;
        p.page = pageDigests.get(e.path)!;
      }
      const l = links.get(e.path);
      if (l && (e.type === 'file' || e.type === 'symlink')) p.links = l;
      return p;
    });
    const data = encodePage(entries);
    const d = digest(data);
    pages.push({ digest: d, data });
    return d;
  };
  // Children before parents without recursion (a tree may be deeper than the
  // JS stack): in a sorted table every directory comes after its parent.
  for (let i = t.entries.length - 1; i >= 0; i--) {
    const e = t.entries[i]!;
    if (e.type === 'dir') pageDigests.set(e.path, pageOf(e.path));
  }
  const page = pageDigests.get('')!;
  const redirects = t.entries.filter((e) => e.type === 'dir' && e.redirect !== undefined).map((e) => ({ origin: e.redirect!, path: e.path }));
  const root = encodeRoot({ chunkSize: t.chunkSize, entries: t.entries.length, root: { mode: rootEntry.mode, uid: rootEntry.uid, gid: rootEntry.gid, mtime: rootEntry.mtime, opaque: !!rootEntry.opaque }, page, redirects });
  // One page per distinct directory content (equal directories share a page).
  const seen = new Set<Digest>();
  return { root, pages: pages.filter((p) => !seen.has(p.digest) && !!seen.add(p.digest)) };
}

/**
 * Reads a whole stored layer back as a table (O(layer); for export, squash,
 * gc and fsck), validating it like a v1 table: a tree root and its pages, or
 * a v1 table. `pages` receives every page digest.
 */
export async function readLayerTable(bytes: Uint8Array, what: string, getPage: (d: Digest) => Promise<Uint8Array>, pages?: Set<Digest>): Promise<LayerTable> {
  if (!isLayerTree(bytes)) return decodeLayer(bytes, what, 'layer');
  const root = decodeRoot(bytes, what);
  const entries: LayerEntry[] = [{ path: '', type: 'dir', mode: root.root.mode, uid: root.root.uid, gid: root.root.gid, mtime: root.root.mtime, ...(root.root.opaque ? { opaque: true } : {}) }];
  // Level by level, each level's pages fetched together (an HTTP store serves them in parallel).
  let level: Array<{ dir: string; page: Digest }> = [{ dir: '', page: root.page }];
  const decoded = new Map<Digest, PageEntry[]>();
  while (level.length) {
    const fresh = [...new Set(level.map((l) => l.page))].filter((d) => !decoded.has(d));
    const datas = await Promise.all(fresh.map((d) => getPage(d)));
    fresh.forEach((d, i) => decoded.set(d, decodePage(datas[i]!, root.chunkSize, `${what}, page ${d}`)));
    const next: typeof level = [];
    level.forEach(({ dir, page }) => {
      pages?.add(page);
      const list = decoded.get(page)!;
      if (entries.length + list.length > root.entries) throw new LayerboxError(`${what}: the layer says ${root.entries} entries, its pages hold more`, { code: 'CORRUPT' });
      for (const e of list) {
        const { name, page: sub, links: _links, ...rest } = e;
        const path = joinPath(dir, name);
        entries.push({ path, ...rest });
        if (e.type === 'dir') next.push({ dir: path, page: sub! });
      }
    });
    level = next;
  }
  entries.sort((a, b) => comparePaths(a.path, b.path));
  if (entries.length !== root.entries) throw new LayerboxError(`${what}: the layer says ${root.entries} entries, its pages hold ${entries.length}`, { code: 'CORRUPT' });
  const t: LayerTable = { kind: 'layer', chunkSize: root.chunkSize, entries };
  // The v1 reader's checks (parents, hard links to earlier files of the layer) apply to the whole.
  decodeLayer(encodeLayer(t), what, 'layer');
  return t;
}
