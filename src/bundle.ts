import { type Digest, isDigest } from './digest.js';
import { LayerboxError } from './errno.js';
import type { StreamHasher } from './oci/import.js';
import { checkBoxName, parseTag } from './image.js';
import { chunksOf, decodeLayer } from './layer.js';
import { type Backend, type BoxRecord, checkBoxRecord, own } from './store/backend.js';
import { Store } from './store/store.js';
import { TAR_END, type TarEntry, readTarAt, tarPieces } from './tar.js';
import { concatBytes, fromUtf8, utf8 } from './text.js';

const MAGIC = 'layerbox-bundle';
const VERSION = 1;

/** What a bundle carries besides its blobs. */
export interface BundleIndex {
  images: Array<{ digest: Digest; tags: string[] }>;
  boxes: Array<{ name: string; record: BoxRecord }>;
}

async function tableBlobs(store: Store, digest: Digest, kind: 'layer' | 'upper', into: Set<Digest>): Promise<void> {
  into.add(digest);
  if (kind === 'upper') {
    for (const c of chunksOf(decodeLayer(await store.backend.getBlob(digest), `${kind} ${digest}`, kind))) into.add(c);
    return;
  }
  const { table, pages } = await store.layerBlobs(digest);
  for (const p of pages) into.add(p);
  for (const c of chunksOf(table)) into.add(c);
}

async function imageBlobs(store: Store, image: Digest, into: Set<Digest>): Promise<void> {
  into.add(image);
  for (const l of (await store.manifest(image)).layers) await tableBlobs(store, l.digest, 'layer', into);
}

/**
 * One file holding images (with their tags) and boxes (with their uppers):
 * a tar of `layerbox-bundle.json` and every blob they need, under
 * `blobs/sha256/<hex>`. Opened again by `importBundle`, in any store.
 */
export async function exportBundle(store: Store, what: { images?: string[]; boxes?: string[] }): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of bundlePieces(store, what)) parts.push(p);
  return concatBytes(parts);
}

/**
 * The bundle as a stream of tar pieces, one blob read at a time: a bundle
 * holds chunks, never whole files, so memory stays at one chunk whatever the
 * size of the files (a sparse file's holes are not in it at all).
 */
export async function* bundlePieces(store: Store, what: { images?: string[]; boxes?: string[] }): AsyncGenerator<Uint8Array> {
  const refs = await store.backend.readRefs();
  const blobs = new Set<Digest>();
  const index: BundleIndex = { images: [], boxes: [] };
  for (const ref of what.images ?? []) {
    const digest = await store.resolveImage(ref, refs);
    // Named by a tag: that tag travels; named by a digest: every tag of it does.
    const tag = isDigest(ref) ? null : safeTag(ref);
    const tags = tag && refs.tags[tag] === digest ? [tag] : Object.entries(refs.tags).filter(([, d]) => d === digest).map(([t]) => t).sort();
    index.images.push({ digest, tags });
    await imageBlobs(store, digest, blobs);
  }
  for (const name of what.boxes ?? []) {
    const record = await store.boxRecord(name, refs);
    index.boxes.push({ name, record });
    await imageBlobs(store, record.image, blobs);
    if (record.upper) await tableBlobs(store, record.upper, 'upper', blobs);
  }
  if (!index.images.length && !index.boxes.length) throw new LayerboxError('nothing to export: name an image or a box', { code: 'INVALID' });
  const head: TarEntry = { path: 'layerbox-bundle.json', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: utf8(JSON.stringify({ magic: MAGIC, version: VERSION, ...index })) };
  yield* tarPieces([head], false);
  for (const d of [...blobs].sort()) yield* tarPieces([{ path: `blobs/sha256/${d.slice(7)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: await store.backend.getBlob(d) }], false);
  yield TAR_END;
}

function safeTag(ref: string): string | null {
  try {
    return parseTag(ref);
  } catch {
    return null;
  }
}

/** Reads `len` bytes at `pos` of a bundle (fewer only at its end). */
export type BundleReadAt = (pos: number, len: number) => Promise<Uint8Array>;

/** Largest layerbox-bundle.json read (it is parsed whole). */
const MAX_BUNDLE_INDEX = 64 * 1024 * 1024;
/** Largest blob member: blobs are read whole to be checked and stored (chunks are 64 KiB; tables and pages are far smaller than this). */
const MAX_BUNDLE_BLOB = 1024 * 1024 * 1024;
/** Blobs are stored in batches of about this many bytes: memory holds one batch, whatever the bundle's size. */
const BUNDLE_BATCH_BYTES = 32 * 1024 * 1024;
/** Piece size of the first check of a blob, when the host hashes in pieces. */
const BUNDLE_PIECE = 1024 * 1024;

/**
 * Opens a bundle held in memory (see importBundleAt).
 */
export async function importBundle(store: Store, bytes: Uint8Array): Promise<BundleIndex> {
  return importBundleAt(store, async (pos, len) => bytes.subarray(pos, pos + len), bytes.length);
}

/**
 * Opens a bundle of `size` bytes read through `readAt` (a file, read at
 * offsets): its members are indexed from their headers, every blob is
 * checked against its name, the images and boxes are checked complete, and
 * only then are the blobs stored (a batch at a time) and the tags set and
 * the boxes created in one refs update. A bad bundle changes nothing; a box
 * whose name is taken is refused. Memory holds one batch of blobs and the
 * members' offsets, never the bundle. `opts.hasher` (sha256 in pieces) lets
 * the first check of each blob stream too.
 */
export async function importBundleAt(store: Store, readAt: BundleReadAt, size: number, opts: { hasher?: () => StreamHasher } = {}): Promise<BundleIndex> {
  const read = async (offset: number, length: number): Promise<Uint8Array> => {
    const b = await readAt(offset, length);
    if (b.length !== length) throw new LayerboxError(`bundle is truncated (a member at byte ${offset} needs ${length} bytes)`, { code: 'CORRUPT' });
    return b;
  };
  // Pass 1, headers only: where each member is. A truncated or malformed tar stops here.
  let head: { offset: number; size: number } | null = null;
  let heads = 0;
  const members: Array<{ digest: Digest; offset: number; size: number }> = [];
  const where = new Map<Digest, { offset: number; size: number }>();
  for await (const m of readTarAt(readAt, size)) {
    if (m.entry.type !== 'file') continue;
    if (m.entry.path === 'layerbox-bundle.json') {
      heads++;
      head = { offset: m.offset, size: m.size };
      continue;
    }
    const match = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(m.entry.path);
    if (!match) continue;
    const digest = `sha256:${match[1]}` as Digest;
    if (m.size > MAX_BUNDLE_BLOB) throw new LayerboxError(`bundle blob ${digest} is ${m.size} bytes (at most ${MAX_BUNDLE_BLOB})`, { code: 'UNSUPPORTED' });
    members.push({ digest, offset: m.offset, size: m.size });
    if (!where.has(digest)) where.set(digest, { offset: m.offset, size: m.size });
  }
  // Two indexes would let what is checked differ from what is applied: refuse, as for any ambiguity.
  if (heads > 1) throw new LayerboxError(`not a valid layerbox bundle: it holds ${heads} layerbox-bundle.json`, { code: 'CORRUPT' });
  if (!head) throw new LayerboxError('not a layerbox bundle (no layerbox-bundle.json)', { code: 'CORRUPT' });
  if (head.size > MAX_BUNDLE_INDEX) throw new LayerboxError(`bad layerbox bundle: layerbox-bundle.json is ${head.size} bytes (at most ${MAX_BUNDLE_INDEX})`, { code: 'CORRUPT' });
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(await read(head.offset, head.size)));
  } catch (e) {
    if (e instanceof LayerboxError) throw e;
    throw new LayerboxError('not a layerbox bundle (bad layerbox-bundle.json)', { code: 'CORRUPT' });
  }
  const index = parseBundleIndex(doc);
  for (const i of index.images) if (!where.has(i.digest)) throw new LayerboxError(`bundle is missing image ${i.digest}`, { code: 'CORRUPT' });
  // Pass 2: every blob against its name, before anything is stored; hashed in pieces where the host can,
  // so a hostile member costs a piece of memory, not its size.
  const mismatch = (d: Digest) => new LayerboxError(`bundle blob ${d} does not match its digest`, { code: 'CORRUPT' });
  const blob = async (m: { digest: Digest; offset: number; size: number }): Promise<Uint8Array> => {
    const data = await read(m.offset, m.size);
    if (store.digest(data) !== m.digest) throw mismatch(m.digest);
    return data;
  };
  for (const m of members) {
    if (!opts.hasher) {
      await blob(m);
      continue;
    }
    const h = opts.hasher();
    for (let o = 0; o < m.size; ) {
      const piece = await read(m.offset + o, Math.min(BUNDLE_PIECE, m.size - o));
      h.update(piece);
      o += piece.length;
    }
    if (h.digest() !== m.digest) throw mismatch(m.digest);
  }
  await store.backend.lock(async () => {
    const refs = await store.backend.readRefs();
    for (const b of index.boxes) if (own(refs.boxes, b.name)) throw new LayerboxError(`box ${b.name} already exists`, { code: 'ALREADY_EXISTS' });
    // Every image and upper must be complete, from the bundle or the store, before a blob is stored:
    // a bundle with holes leaves nothing behind.
    const view = new Store(bundleView(store.backend, where, blob), { chunkSize: store.chunkSize, hasher: store.hash, clock: store.clock });
    const needed = new Set<Digest>();
    for (const i of index.images) await imageBlobs(view, i.digest, needed);
    for (const b of index.boxes) {
      await imageBlobs(view, b.record.image, needed);
      if (b.record.upper) await tableBlobs(view, b.record.upper, 'upper', needed);
    }
    for (const d of needed) if (!where.has(d) && !store.backend.hasBlob(d)) throw new LayerboxError(`bundle is missing blob ${d}`, { code: 'CORRUPT' });
    // Pass 3: store what the images and boxes need and the store lacks (a blob nothing uses is left out, not
    // left for gc). Each blob is checked again as it is read: the file may have changed since pass 2.
    let batch: Array<{ digest: Digest; data: Uint8Array }> = [];
    let bytes = 0;
    const queued = new Set<Digest>();
    for (const m of members) {
      if (!needed.has(m.digest) || queued.has(m.digest) || store.backend.hasBlob(m.digest)) continue;
      queued.add(m.digest);
      const data = await blob(m);
      batch.push({ digest: m.digest, data });
      bytes += data.length;
      if (bytes >= BUNDLE_BATCH_BYTES) {
        await store.backend.putBlobs(batch);
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length) await store.backend.putBlobs(batch);
    for (const d of needed) if (!store.backend.hasBlob(d)) throw new LayerboxError(`bundle is missing blob ${d}`, { code: 'CORRUPT' });
    for (const i of index.images) for (const t of i.tags) refs.tags[t] = i.digest;
    for (const b of index.boxes) refs.boxes[b.name] = { ...b.record, created: store.nowIso() };
    await store.backend.writeRefs(refs);
  });
  return index;
}

/**
 * A read-only backend over a bundle's blobs, falling back to the store's:
 * enough to walk images and uppers (manifests, tables, pages) before any
 * blob of the bundle is stored.
 */
function bundleView(backend: Backend, where: Map<Digest, { offset: number; size: number }>, blob: (m: { digest: Digest; offset: number; size: number }) => Promise<Uint8Array>): Backend {
  const missing = (d: Digest) => new LayerboxError(`bundle is missing blob ${d}`, { code: 'CORRUPT' });
  const readOnly = (): never => {
    throw new LayerboxError('a bundle view is read-only', { code: 'UNSUPPORTED' });
  };
  return {
    kind: 'bundle',
    location: 'bundle',
    lock: readOnly,
    hasBlob: (d) => where.has(d) || backend.hasBlob(d),
    getBlob: async (d) => {
      const m = where.get(d);
      if (m) return blob({ digest: d, ...m });
      if (!backend.hasBlob(d)) throw missing(d);
      return backend.getBlob(d);
    },
    readBlobSync: readOnly,
    putBlobs: readOnly,
    readRefs: () => backend.readRefs(),
    writeRefs: readOnly,
    listBlobs: readOnly,
    deleteBlobs: readOnly,
    verify: readOnly,
    stats: readOnly,
    close: async () => {},
  };
}

/**
 * Checks a bundle's index before anything is stored: every image a digest
 * with valid tags, every box a valid name and record (limits in bounds).
 * Returns clean copies holding only the known fields.
 */
function parseBundleIndex(doc: unknown): BundleIndex {
  const d = doc as { magic?: unknown; version?: unknown; images?: unknown; boxes?: unknown } | null;
  if (typeof d !== 'object' || d === null || Array.isArray(d) || d.magic !== MAGIC) throw new LayerboxError('not a layerbox bundle', { code: 'CORRUPT' });
  if (d.version !== VERSION) throw new LayerboxError(`unsupported layerbox bundle version ${JSON.stringify(d.version)} (this layerbox reads ${VERSION})`, { code: 'INVALID' });
  const list = (v: unknown, what: string): unknown[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new LayerboxError(`bad layerbox bundle: ${what} is not a list`, { code: 'CORRUPT' });
    return v;
  };
  const bad = (what: string) => new LayerboxError(`bad layerbox bundle: ${what}`, { code: 'CORRUPT' });
  const images = list(d.images, 'images').map((x, n) => {
    const i = x as { digest?: unknown; tags?: unknown } | null;
    if (typeof i !== 'object' || i === null || !isDigest(i.digest)) throw bad(`image ${n + 1} has no valid digest`);
    const tags = list(i.tags, `the tags of image ${n + 1}`).map((t) => {
      if (typeof t !== 'string') throw bad(`image ${n + 1} has a tag that is not a string: ${JSON.stringify(t)}`);
      try {
        return parseTag(t);
      } catch (e) {
        throw bad(`image ${n + 1}: ${(e as Error).message}`);
      }
    });
    return { digest: i.digest, tags };
  });
  const boxes = list(d.boxes, 'boxes').map((x, n) => {
    const b = x as { name?: unknown; record?: unknown } | null;
    if (typeof b !== 'object' || b === null || typeof b.name !== 'string') throw bad(`box ${n + 1} has no name`);
    try {
      checkBoxName(b.name);
      return { name: b.name, record: checkBoxRecord(b.record, `box ${b.name}`) };
    } catch (e) {
      throw bad((e as Error).message);
    }
  });
  const names = new Set(boxes.map((b) => b.name));
  if (names.size !== boxes.length) throw bad('it names a box twice');
  return { images, boxes };
}
