import { type Digest, isDigest } from './digest.js';
import { LayerboxError } from './errno.js';
import { checkBoxName, parseTag } from './image.js';
import { chunksOf, decodeLayer } from './layer.js';
import { type BoxRecord, checkBoxRecord, own } from './store/backend.js';
import type { Store } from './store/store.js';
import { TAR_END, type TarEntry, readTar, tarPieces } from './tar.js';
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
  if (!index.images.length && !index.boxes.length) throw new LayerboxError('nothing to export: name an image or a box');
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

/**
 * Opens a bundle: verifies every blob against its name, stores them, then
 * sets the tags and creates the boxes in one refs update. A box whose name is
 * taken is refused (nothing is changed).
 */
export async function importBundle(store: Store, bytes: Uint8Array): Promise<BundleIndex> {
  const entries = readTar(bytes);
  const heads = entries.filter((e) => e.path === 'layerbox-bundle.json');
  // Two indexes would let what is checked differ from what is applied: refuse, as for any ambiguity.
  if (heads.length > 1) throw new LayerboxError(`not a valid layerbox bundle: it holds ${heads.length} layerbox-bundle.json`);
  const head = heads[0];
  if (!head?.data) throw new LayerboxError('not a layerbox bundle (no layerbox-bundle.json)');
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(head.data));
  } catch {
    throw new LayerboxError('not a layerbox bundle (bad layerbox-bundle.json)');
  }
  const index = parseBundleIndex(doc);
  const blobs: Array<{ digest: Digest; data: Uint8Array }> = [];
  for (const e of entries) {
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(e.path);
    if (!m) continue;
    const digest = `sha256:${m[1]}` as Digest;
    if (store.digest(e.data ?? new Uint8Array()) !== digest) throw new LayerboxError(`bundle blob ${digest} does not match its digest`);
    blobs.push({ digest, data: e.data! });
  }
  const have = new Set(blobs.map((b) => b.digest));
  for (const i of index.images) if (!have.has(i.digest)) throw new LayerboxError(`bundle is missing image ${i.digest}`);
  await store.backend.lock(async () => {
    const refs = await store.backend.readRefs();
    for (const b of index.boxes) if (own(refs.boxes, b.name)) throw new LayerboxError(`box ${b.name} already exists`);
    await store.backend.putBlobs(blobs);
    // Every image and upper must now be complete: refuse a bundle with holes before any ref points at it.
    const needed = new Set<Digest>();
    for (const i of index.images) await imageBlobs(store, i.digest, needed);
    for (const b of index.boxes) {
      await imageBlobs(store, b.record.image, needed);
      if (b.record.upper) await tableBlobs(store, b.record.upper, 'upper', needed);
    }
    for (const d of needed) if (!store.backend.hasBlob(d)) throw new LayerboxError(`bundle is missing blob ${d}`);
    for (const i of index.images) for (const t of i.tags) refs.tags[t] = i.digest;
    for (const b of index.boxes) refs.boxes[b.name] = { ...b.record, created: store.nowIso() };
    await store.backend.writeRefs(refs);
  });
  return index;
}

/**
 * Checks a bundle's index before anything is stored: every image a digest
 * with valid tags, every box a valid name and record (limits in bounds).
 * Returns clean copies holding only the known fields.
 */
function parseBundleIndex(doc: unknown): BundleIndex {
  const d = doc as { magic?: unknown; version?: unknown; images?: unknown; boxes?: unknown } | null;
  if (typeof d !== 'object' || d === null || Array.isArray(d) || d.magic !== MAGIC) throw new LayerboxError('not a layerbox bundle');
  if (d.version !== VERSION) throw new LayerboxError(`unsupported layerbox bundle version ${JSON.stringify(d.version)} (this layerbox reads ${VERSION})`);
  const list = (v: unknown, what: string): unknown[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new LayerboxError(`bad layerbox bundle: ${what} is not a list`);
    return v;
  };
  const bad = (what: string) => new LayerboxError(`bad layerbox bundle: ${what}`);
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
