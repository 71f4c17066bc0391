import { Box, type RunOptions } from '../box.js';
import { LayerBuilder } from '../builder.js';
import { type Digest, type Hasher, defaultHasher, digestOf, isDigest, shortDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { type ImageConfig, type ImageManifest, type LayerRef, checkBoxName, decodeImage, encodeImage, parseTag } from '../image.js';
import { DEFAULT_CHUNK_SIZE, type LayerTable, chunksOf, decodeLayer } from '../layer.js';
import { type BoxLimits, Overlay } from '../overlay/overlay.js';
import { type LowerLayer, mountLower, mountLowerTree } from '../overlay/tree.js';
import { decodeRoot, encodeLayerTree, isLayerTree, readLayerTable } from '../layer-tree.js';
import { squashTable } from '../overlay/squash.js';
import { addTarBytes, exportTar } from '../archive.js';
import { utf8 } from '../text.js';
import { type Backend, type BlobProblem, type BoxRecord, type JournalLog, type JournalSource, type RefsDoc, checkLimits, own } from './backend.js';
import type { RunResult } from '../run.js';
import { DEFAULT_CACHE_BYTES, journalApplies, replayTable, scanJournal } from './journal.js';
import { encodeLayer } from '../layer.js';

export interface StoreOptions {
  /** Chunk size for new content (default 64 KiB). */
  chunkSize?: number;
  hasher?: Hasher;
  /** Nanoseconds since the epoch, for file times. */
  clock?: () => bigint;
  /** Bytes of written data a box keeps in memory before they spill to its journal (default 64 MiB). */
  cacheBytes?: number;
  /** Random bytes (journal salts); hosts pass their CSPRNG. */
  random?: (n: number) => Uint8Array;
  /** Size below which a box journal is never compacted (default 32 MiB; small values are for tests). */
  journalCompactBytes?: number;
}

export interface ImageInfo {
  digest: Digest;
  tags: string[];
  created: string;
  layers: number;
  /** Bytes of layer tables and added data over all layers. */
  size: number;
}

export interface HistoryRow {
  layer: Digest;
  created: string;
  createdBy: string;
  comment: string;
  size: number;
  entries: number;
}

export interface BoxInfo extends BoxRecord {
  name: string;
  tags: string[];
}

export interface ImportOptions {
  tag?: string;
  comment?: string;
  createdBy?: string;
  config?: Partial<ImageConfig>;
  /** ISO time for the new history entry and image (default: now); imports keep the source's. */
  created?: string;
}

export interface FsckReport {
  blobs: number;
  problems: BlobProblem[];
}

const defaultClock = (): bigint => BigInt(Date.now()) * 1_000_000n;
/** A checkpoint moves a journal's chunks into the store this many bytes at a time: memory stays bounded. */
const CHECKPOINT_GROUP = 32 << 20;
/** Garbage boxes may leave (superseded uppers, resets, removals) before the store collects it itself. */
const GC_AFTER_BYTES = 64 << 20;

/**
 * Images, tags and boxes over a backend. Every change is written blobs
 * first, then the refs document in one atomic step, under the store lock.
 */
export class Store {
  readonly chunkSize: number;
  readonly hash: Hasher;
  readonly clock: () => bigint;
  readonly cacheBytes: number;
  readonly journalCompactBytes?: number;
  readonly random: (n: number) => Uint8Array;
  /** Set by hosts that run guests elsewhere (a worker they can stop); Box.run uses it. */
  runner?: (box: Box, wasm: Uint8Array | WebAssembly.Module, opts: RunOptions) => Promise<RunResult | null>;
  /** Mounted lower layers by (position, digest): boxes over one image share them. */
  private mounted = new Map<string, LowerLayer>();

  constructor(readonly backend: Backend, opts: StoreOptions = {}) {
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.hash = opts.hasher ?? defaultHasher;
    this.clock = opts.clock ?? defaultClock;
    this.cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.journalCompactBytes = opts.journalCompactBytes;
    this.random = opts.random ?? ((n) => crypto.getRandomValues(new Uint8Array(n)));
  }

  digest(data: Uint8Array): Digest {
    return digestOf(data, this.hash);
  }

  nowIso(): string {
    return new Date(Number(this.clock() / 1_000_000n)).toISOString();
  }

  // ---- images ---------------------------------------------------------------

  /** Finds an image by `name[:tag]`, full digest, or a unique digest prefix (at least 4 hex digits). */
  async resolveImage(ref: string, refs?: RefsDoc): Promise<Digest> {
    refs ??= await this.backend.readRefs();
    if (isDigest(ref)) {
      if (!this.backend.hasBlob(ref)) throw new LayerboxError(`no such image: ${ref}`, { code: 'NOT_FOUND' });
      return ref;
    }
    const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
    if (/^[0-9a-f]{4,64}$/.test(hex)) {
      const all = new Set<Digest>([...Object.values(refs.tags), ...Object.values(refs.boxes).map((b) => b.image)]);
      const hits = [...all].filter((d) => d.slice(7).startsWith(hex));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) throw new LayerboxError(`ambiguous image id ${ref}`, { code: 'INVALID' });
    }
    let tag: string;
    try {
      tag = parseTag(ref);
    } catch {
      throw new LayerboxError(`no such image: ${ref}`, { code: 'NOT_FOUND' });
    }
    const d = own(refs.tags, tag);
    if (!d) throw new LayerboxError(`no such image: ${ref}`, { code: 'NOT_FOUND' });
    return d;
  }

  async manifest(digest: Digest): Promise<ImageManifest> {
    return decodeImage(await this.backend.getBlob(digest), `image ${digest}`);
  }

  /** A whole layer table (O(layer): read every page). */
  async layerTable(digest: Digest): Promise<LayerTable> {
    return (await this.layerBlobs(digest)).table;
  }

  /** A whole layer table and the page blobs it is stored in. */
  async layerBlobs(digest: Digest): Promise<{ table: LayerTable; pages: Set<Digest> }> {
    const pages = new Set<Digest>();
    const table = await readLayerTable(await this.backend.getBlob(digest), `layer ${digest}`, (d) => this.backend.getBlob(d), pages);
    return { table, pages };
  }

  async listImages(): Promise<ImageInfo[]> {
    const refs = await this.backend.readRefs();
    const byDigest = new Map<Digest, string[]>();
    for (const [t, d] of Object.entries(refs.tags)) byDigest.set(d, [...(byDigest.get(d) ?? []), t]);
    const out: ImageInfo[] = [];
    for (const [digest, tags] of byDigest) {
      const m = await this.manifest(digest);
      out.push({ digest, tags: tags.sort(), created: m.created, layers: m.layers.length, size: m.layers.reduce((s, l) => s + l.size + l.dataSize, 0) });
    }
    return out.sort((a, b) => (a.tags[0]! < b.tags[0]! ? -1 : 1));
  }

  async inspectImage(ref: string): Promise<ImageManifest & { digest: Digest; tags: string[] }> {
    const refs = await this.backend.readRefs();
    const digest = await this.resolveImage(ref, refs);
    const tags = Object.entries(refs.tags).filter(([, d]) => d === digest).map(([t]) => t).sort();
    return { digest, tags, ...(await this.manifest(digest)) };
  }

  /** Layers newest first, like `docker history`. */
  async history(ref: string): Promise<HistoryRow[]> {
    const m = await this.manifest(await this.resolveImage(ref));
    // A manifest read from a hostile store may list more history than layers: those rows have no size.
    return m.history.map((h, i) => ({ ...h, size: (m.layers[i]?.size ?? 0) + (m.layers[i]?.dataSize ?? 0), entries: m.layers[i]?.entries ?? 0 })).reverse();
  }

  /** Removes a tag; given a digest, every tag of it. An image a box stands on keeps its blobs until the box goes. */
  async removeImage(ref: string): Promise<string[]> {
    return this.backend.lock(async () => {
      const refs = await this.backend.readRefs();
      const digest = await this.resolveImage(ref, refs);
      let tags: string[];
      try {
        const t = parseTag(ref);
        tags = refs.tags[t] === digest ? [t] : [];
      } catch {
        tags = [];
      }
      if (!tags.length) tags = Object.entries(refs.tags).filter(([, d]) => d === digest).map(([t]) => t);
      if (!tags.length) throw new LayerboxError(`image ${ref} has no tag to remove`, { code: 'NOT_FOUND' });
      for (const t of tags) delete refs.tags[t];
      await this.backend.writeRefs(refs);
      return tags;
    });
  }

  async tag(ref: string, tag: string): Promise<void> {
    await this.backend.lock(async () => {
      const refs = await this.backend.readRefs();
      refs.tags[parseTag(tag)] = await this.resolveImage(ref, refs);
      await this.backend.writeRefs(refs);
    });
  }

  /** Writes a new image made of `parent`'s layers plus one, and optionally tags it. Caller holds the lock. */
  private async writeImage(parent: { digest: Digest; manifest: ImageManifest } | null, layer: { table: LayerTable; dataSize: number }, info: ImportOptions, extraBlobs: Array<{ digest: Digest; data: Uint8Array }> = []): Promise<{ digest: Digest; manifest: ImageManifest; layerDigest: Digest }> {
    const tree = encodeLayerTree(layer.table, (b) => this.digest(b));
    const tableBytes = tree.root;
    const layerDigest = this.digest(tableBytes);
    const ref: LayerRef = { digest: layerDigest, size: tree.pages.reduce((n, p) => n + p.data.length, tableBytes.length), dataSize: layer.dataSize, entries: layer.table.entries.length };
    const created = info.created ?? this.nowIso();
    const base = parent?.manifest;
    if (base && base.chunkSize !== this.chunkSize) throw new LayerboxError(`image ${parent!.digest} uses ${base.chunkSize}-byte chunks; this store uses ${this.chunkSize}`, { code: 'UNSUPPORTED' });
    const manifest: ImageManifest = {
      chunkSize: this.chunkSize,
      layers: [...(base?.layers ?? []), ref],
      config: { env: info.config?.env ?? base?.config.env ?? [], workingDir: info.config?.workingDir ?? base?.config.workingDir ?? '/', cmd: info.config?.cmd ?? base?.config.cmd ?? [] },
      history: [...(base?.history ?? []), { created, createdBy: info.createdBy ?? 'layerbox', comment: info.comment ?? '', layer: layerDigest }],
      parent: parent?.digest ?? null,
      created,
    };
    const mbytes = encodeImage(manifest);
    const digest = this.digest(mbytes);
    await this.backend.putBlobs([...extraBlobs, ...tree.pages, { digest: layerDigest, data: tableBytes }, { digest, data: mbytes }]);
    return { digest, manifest, layerDigest };
  }

  /**
   * Imports one layer as a new image: `fill` adds entries to the builder
   * (host runtimes walk a directory or a tar into it).
   */
  importLayer(fill: (b: LayerBuilder) => Promise<void>, opts: ImportOptions = {}): Promise<Digest> {
    return this.importLayerOnto(null, fill, opts);
  }

  /**
   * Stacks one new layer on `parent` (or starts a new image with null):
   * `fill` adds the layer's entries. The new image keeps the parent's layers,
   * history and config (overridden by `opts.config`); the tags (`opts.tag`
   * and `opts.tags`) are set in one refs write after every blob is stored.
   */
  async importLayerOnto(parent: Digest | null, fill: (b: LayerBuilder) => Promise<void>, opts: ImportOptions & { tags?: string[] } = {}): Promise<Digest> {
    const tags = [...(opts.tag ? [opts.tag] : []), ...(opts.tags ?? [])].map(parseTag);
    return this.backend.lock(async () => {
      const base = parent === null ? null : { digest: parent, manifest: await this.manifest(parent) };
      const b = new LayerBuilder(this.chunkSize, (x) => this.digest(x), (blobs) => this.backend.putBlobs(blobs));
      await fill(b);
      await b.drain();
      const img = await this.writeImage(base, { table: b.table(), dataSize: b.dataSize }, opts);
      if (tags.length) {
        const refs = await this.backend.readRefs();
        for (const t of tags) refs.tags[t] = img.digest;
        await this.backend.writeRefs(refs);
      }
      return img.digest;
    });
  }

  /** One image whose single layer is the merged view of `ref`'s layers. */
  async squash(ref: string, opts: ImportOptions = {}): Promise<Digest> {
    const digest = await this.resolveImage(ref);
    const m = await this.manifest(digest);
    const ov = new Overlay(await this.mountImage(m), undefined, this.overlayOptions());
    const table = squashTable(ov, this.chunkSize);
    const tag = opts.tag ? parseTag(opts.tag) : undefined;
    return this.backend.lock(async () => {
      const img = await this.writeImage(null, { table, dataSize: m.layers.reduce((s, l) => s + l.dataSize, 0) }, { createdBy: `layerbox squash ${shortDigest(digest)}`, config: m.config, ...opts });
      if (tag) {
        const refs = await this.backend.readRefs();
        refs.tags[tag] = img.digest;
        await this.backend.writeRefs(refs);
      }
      return img.digest;
    });
  }

  /** Imports an uncompressed tar as a one-layer image (host-neutral; Node also reads .tar.gz from files). */
  importTarBytes(bytes: Uint8Array, opts: ImportOptions = {}): Promise<Digest> {
    return this.importLayer((b) => addTarBytes(b, bytes), { createdBy: 'layerbox import tar', ...opts });
  }

  /** Imports files given in memory: `{ path, data }` (data omitted: a directory). */
  importFiles(files: Array<{ path: string; data?: Uint8Array | string; mode?: number; mtime?: bigint }>, opts: ImportOptions = {}): Promise<Digest> {
    return this.importLayer(async (b) => {
      for (const f of files) {
        if (f.data === undefined) b.addDir(f.path, { mode: f.mode, mtime: f.mtime });
        else await b.addFile(f.path, typeof f.data === 'string' ? utf8(f.data) : f.data, { mode: f.mode, mtime: f.mtime });
      }
    }, { createdBy: 'layerbox import files', ...opts });
  }

  /** An image's merged view as a tar archive. */
  async exportTar(ref: string): Promise<Uint8Array> {
    const m = await this.manifest(await this.resolveImage(ref));
    return exportTar(new Overlay(await this.mountImage(m), undefined, this.overlayOptions()));
  }

  // ---- mounting -------------------------------------------------------------

  overlayOptions() {
    const into = this.backend.readBlobsInto?.bind(this.backend);
    return { chunkSize: this.chunkSize, readChunk: (d: Digest) => this.backend.readBlobSync(d), readChunksInto: into, clock: this.clock };
  }

  /** Mounts an image's layers: reads their tables only, never file data. */
  async mountImage(m: ImageManifest): Promise<LowerLayer[]> {
    if (m.chunkSize !== this.chunkSize) throw new LayerboxError(`image uses ${m.chunkSize}-byte chunks; this store uses ${this.chunkSize}`, { code: 'UNSUPPORTED' });
    const out: LowerLayer[] = [];
    for (let i = 0; i < m.layers.length; i++) out.push(await this.mountLayer(m.layers[i]!.digest, i));
    return out;
  }

  async mountLayer(digest: Digest, index: number, table?: LayerTable): Promise<LowerLayer> {
    const key = `${index}:${digest}`;
    let l = this.mounted.get(key);
    if (!l) {
      if (table) l = mountLower(table, digest, index);
      else {
        const bytes = await this.backend.getBlob(digest);
        // Stores that read synchronously mount lazily (a page per directory, when first looked into);
        // asynchronous ones (IndexedDB, HTTP) load the whole table now.
        l = isLayerTree(bytes) && !this.backend.preload
          ? mountLowerTree(decodeRoot(bytes, `layer ${digest}`), digest, index, (d) => this.backend.readBlobSync(d))
          : mountLower(await readLayerTable(bytes, `layer ${digest}`, (d) => this.backend.getBlob(d)), digest, index);
      }
      this.mounted.set(key, l);
    }
    return l;
  }

  // ---- boxes ------------------------------------------------------------------

  async createBox(name: string, opts: { image: string; limits?: BoxLimits }): Promise<Box> {
    checkBoxName(name);
    const limits = checkLimits(opts.limits);
    await this.backend.lock(async () => {
      const refs = await this.backend.readRefs();
      if (own(refs.boxes, name)) throw new LayerboxError(`box ${name} already exists`, { code: 'ALREADY_EXISTS' });
      refs.boxes[name] = { image: await this.resolveImage(opts.image, refs), upper: null, created: this.nowIso(), ...(limits ? { limits } : {}) };
      await this.backend.writeRefs(refs);
    });
    return this.openBox(name);
  }

  async boxRecord(name: string, refs?: RefsDoc): Promise<BoxRecord> {
    refs ??= await this.backend.readRefs();
    const r = own(refs.boxes, name);
    if (!r) throw new LayerboxError(`no such box: ${name}`, { code: 'NOT_FOUND' });
    return r;
  }

  async openBox(name: string): Promise<Box> {
    const rec = await this.boxRecord(name);
    return Box.open(this, name, rec);
  }

  /** A box over an image that is never persisted (its changes vanish with it). */
  async ephemeralBox(image: string): Promise<Box> {
    return Box.ephemeral(this, await this.resolveImage(image));
  }

  async listBoxes(): Promise<BoxInfo[]> {
    const refs = await this.backend.readRefs();
    return Object.entries(refs.boxes)
      .map(([name, r]) => ({ name, ...r, tags: Object.entries(refs.tags).filter(([, d]) => d === r.image).map(([t]) => t).sort() }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async removeBox(name: string): Promise<void> {
    await this.updateBoxes(async (refs) => {
      const r = own(refs.boxes, name);
      if (!r) throw new LayerboxError(`no such box: ${name}`, { code: 'NOT_FOUND' });
      await this.dropJournal(name);
      if (r.upper) refs.garbage = (refs.garbage ?? 0) + (await this.supersededBytes(r.upper, null, null));
      delete refs.boxes[name];
    });
  }

  /** Removes a box's journal: before the refs change, so a crash between never brings its changes back. */
  private async dropJournal(name: string): Promise<void> {
    await (await this.backend.readJournal?.(name))?.remove();
  }

  /** Runs `fn` with the box marked in use (where the backend is shared between processes). */
  async withBox<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const release = this.backend.leaseBox ? await this.backend.leaseBox(name) : null;
    try {
      return await fn();
    } finally {
      release?.();
    }
  }

  /** Drops the box's upper: it sees its image again. */
  async resetBox(name: string): Promise<void> {
    await this.updateBoxes(async (refs) => {
      const r = own(refs.boxes, name);
      if (!r) throw new LayerboxError(`no such box: ${name}`, { code: 'NOT_FOUND' });
      await this.dropJournal(name);
      if (r.upper) refs.garbage = (refs.garbage ?? 0) + (await this.supersededBytes(r.upper, null, null));
      r.upper = null;
    });
  }

  /** A new box with the same image and upper (O(1): the upper snapshot is immutable and shared). */
  async forkBox(name: string, newName: string): Promise<void> {
    checkBoxName(newName);
    // The journal belongs to the box's name: fold it first, so the copy sees every change.
    await this.checkpoint(name, await this.boxRecord(name));
    await this.updateBoxes((refs) => {
      const r = own(refs.boxes, name);
      if (!r) throw new LayerboxError(`no such box: ${name}`, { code: 'NOT_FOUND' });
      if (own(refs.boxes, newName)) throw new LayerboxError(`box ${newName} already exists`, { code: 'ALREADY_EXISTS' });
      refs.boxes[newName] = { ...r, created: this.nowIso() };
    });
  }

  private async updateBoxes(fn: (refs: RefsDoc) => void | Promise<void>): Promise<void> {
    await this.backend.lock(async () => {
      const refs = await this.backend.readRefs();
      await fn(refs);
      await this.backend.writeRefs(refs);
      await this.collectIfDue(refs);
    });
  }

  /**
   * Commit of a box's upper as a new layer (see Box.commit, which calls this
   * with the upper already turned into a table). Atomic: blobs, image, then
   * tag and box pointer in one refs write.
   */
  async writeCommit(box: string, expect: BoxRecord, parent: Digest, layer: { table: LayerTable; dataSize: number }, blobs: Array<{ digest: Digest; data: Uint8Array }>, opts: { tag?: string; message?: string }): Promise<{ digest: Digest; manifest: ImageManifest; layerDigest: Digest }> {
    const tag = opts.tag ? parseTag(opts.tag) : undefined;
    return this.backend.lock(async () => {
      const refs = await this.backend.readRefs();
      this.checkUnchanged(box, refs, expect);
      const manifest = await this.manifest(parent);
      await this.backend.putBlobs(blobs);
      this.checkStored(layer.table, `box ${box}`);
      const img = await this.writeImage({ digest: parent, manifest }, layer, { comment: opts.message ?? '', createdBy: `layerbox commit ${box}` });
      if (tag) refs.tags[tag] = img.digest;
      refs.boxes[box] = { ...own(refs.boxes, box)!, image: img.digest, upper: null };
      await this.backend.writeRefs(refs);
      return img;
    });
  }

  /** Refuses a table that names a chunk the store does not hold: nothing is ever tagged that fsck would reject. */
  private checkStored(table: LayerTable, what: string): void {
    for (const c of chunksOf(table)) if (!this.backend.hasBlob(c)) throw new LayerboxError(`${what}: chunk ${c} is not in the store; refusing to write a snapshot that names it`, { code: 'CORRUPT' });
  }

  /**
   * Folds a box's journal into the store: its changes become the box's new
   * upper snapshot (the journal's chunks go into packs) and the journal goes.
   * `source`: the journal as the caller holds it (default: the backend's).
   * Under the store lock; refuses a box changed since `expect`. Returns the
   * box's record, changed or not. A failure changes nothing.
   */
  async checkpoint(box: string, expect: BoxRecord, source?: JournalSource): Promise<BoxRecord> {
    return this.backend.lock(async () => {
      const refs = await this.backend.readRefs();
      this.checkUnchanged(box, refs, expect);
      const cur = own(refs.boxes, box)!;
      const src = source ?? (await this.backend.readJournal?.(box)) ?? null;
      if (!src || !src.size) return cur;
      // A log the caller still holds was written by it: its chunk bytes are not hashed again.
      const scan = await scanJournal(src, (b) => this.digest(b), { verify: !source });
      if (!journalApplies(scan, { box, image: cur.image, upper: cur.upper, created: cur.created }) || !scan.metas.length) {
        await src.remove();
        return cur;
      }
      const base = cur.upper ? decodeLayer(await this.backend.getBlob(cur.upper), `upper ${cur.upper}`, 'upper') : null;
      const table = replayTable(base, scan.metas, this.chunkSize);
      // The journal's chunks the upper still uses go into the store: streamed where the journal reads synchronously, else in bounded groups.
      const wanted: Array<{ digest: Digest; offset: number; length: number }> = [];
      const seen = new Set<Digest>();
      for (const c of table ? chunksOf(table) : []) {
        const at = scan.chunks.get(c);
        if (!at || seen.has(c) || this.backend.hasBlob(c)) continue;
        seen.add(c);
        wanted.push({ digest: c, ...at });
      }
      let upper: Digest | null = null;
      let tableBlob: { digest: Digest; data: Uint8Array } | null = null;
      if (table) {
        const data = encodeLayer(table);
        upper = this.digest(data);
        tableBlob = { digest: upper, data };
      }
      // Mostly live chunks: the journal becomes a pack as it is (no copy); else the live ones are copied out.
      let live = 0;
      for (const w of wanted) live += w.length;
      const sealed = !source || (source as Partial<JournalLog>).append ? live * 2 >= src.size && (await this.backend.sealJournal?.(box, wanted)) : false;
      await this.storeChunks(src, sealed ? [] : wanted, tableBlob);
      if (table) this.checkStored(table, `box ${box}`);
      const rec = { ...cur, upper };
      refs.boxes[box] = rec;
      refs.garbage = (refs.garbage ?? 0) + (cur.upper ? await this.supersededBytes(cur.upper, base, table) : 0);
      await this.backend.writeRefs(refs);
      await src.remove();
      await this.collectIfDue(refs);
      return rec;
    });
  }

  /** Puts a journal's chunks (and a last blob) into the store, streamed where both sides allow it. */
  private async storeChunks(src: JournalSource, wanted: ReadonlyArray<{ digest: Digest; offset: number; length: number }>, last: { digest: Digest; data: Uint8Array } | null): Promise<void> {
    const sync = src as Partial<JournalLog>;
    if (this.backend.putBlobsLazy && sync.append) {
      const read = sync.read!.bind(src);
      await this.backend.putBlobsLazy([...wanted.map((w) => ({ digest: w.digest, length: w.length, read: () => read(w.offset, w.length) as Uint8Array })), ...(last ? [{ digest: last.digest, length: last.data.length, read: () => last.data }] : [])]);
      return;
    }
    let group: Array<{ digest: Digest; data: Uint8Array }> = [], bytes = 0;
    for (const w of wanted) {
      group.push({ digest: w.digest, data: await src.read(w.offset, w.length) });
      bytes += w.length;
      if (bytes >= CHECKPOINT_GROUP) {
        await this.backend.putBlobs(group);
        group = [];
        bytes = 0;
      }
    }
    if (last) group.push(last);
    await this.backend.putBlobs(group);
  }

  /** Bytes an upper snapshot held that `next` (null: nothing) no longer uses: what its replacement left as garbage. */
  private async supersededBytes(digest: Digest, old: LayerTable | null, next: LayerTable | null): Promise<number> {
    // An estimate (chunks shared with a fork or an image count too): it only decides when a gc runs.
    try {
      return await this.unusedBytes(digest, old, next);
    } catch {
      return 0; // a damaged upper is fsck's business; removing or resetting its box must still work
    }
  }

  private async unusedBytes(digest: Digest, old: LayerTable | null, next: LayerTable | null): Promise<number> {
    const keep = new Set(next ? chunksOf(next) : []);
    let bytes = this.backend.hasBlob(digest) ? (await this.backend.getBlob(digest)).length : 0;
    const table = old ?? decodeLayer(await this.backend.getBlob(digest), `upper ${digest}`, 'upper');
    const cs = table.chunkSize;
    const counted = new Set<Digest>();
    for (const e of table.entries)
      for (const [k, c] of e.chunks ?? []) {
        if (keep.has(c) || counted.has(c)) continue;
        counted.add(c);
        bytes += Math.max(0, Math.min(cs, (e.size ?? 0) - k * cs));
      }
    return bytes;
  }

  /** Runs a gc once boxes have left enough garbage (caller holds the lock and has just written `refs`). */
  private async collectIfDue(refs: RefsDoc): Promise<void> {
    if ((refs.garbage ?? 0) < GC_AFTER_BYTES) return;
    await this.collect();
  }

  /** gc under the lock the caller holds. */
  private async collect(): Promise<{ blobs: number; bytes: number }> {
    const problems: BlobProblem[] = [];
    const live = await this.reachable(problems);
    if (problems.length) throw new LayerboxError(`gc refused: the store has problems (run fsck): ${problems[0]!.digest ?? ''} ${problems[0]!.problem}`, { code: 'CORRUPT' });
    const freed = await this.backend.deleteBlobs((d) => live.has(d));
    const refs = await this.backend.readRefs();
    if (refs.garbage) {
      delete refs.garbage;
      await this.backend.writeRefs(refs);
    }
    return freed;
  }

  private checkUnchanged(box: string, refs: RefsDoc, expect: BoxRecord): void {
    const cur = own(refs.boxes, box);
    if (!cur) throw new LayerboxError(`box ${box} was removed`, { code: 'CONFLICT' });
    if (cur.image !== expect.image || cur.upper !== expect.upper) throw new LayerboxError(`box ${box} was changed by someone else since it was opened; reopen it`, { code: 'CONFLICT' });
  }

  // ---- maintenance ----------------------------------------------------------------

  /** Every blob reachable from a tag or a box, with problems found on the way. */
  private async reachable(problems: BlobProblem[]): Promise<Set<Digest>> {
    const refs = await this.backend.readRefs();
    const live = new Set<Digest>();
    const tables = new Set<Digest>();
    const visitTable = async (d: Digest, kind: 'layer' | 'upper') => {
      if (tables.has(d)) return;
      tables.add(d);
      live.add(d);
      try {
        const pages = new Set<Digest>();
        const bytes = await this.backend.getBlob(d);
        const t = kind === 'upper' ? decodeLayer(bytes, `${kind} ${d}`, kind) : await readLayerTable(bytes, `${kind} ${d}`, (p) => this.backend.getBlob(p), pages);
        for (const p of pages) live.add(p);
        for (const c of chunksOf(t)) {
          live.add(c);
          if (!this.backend.hasBlob(c)) problems.push({ digest: c, problem: `chunk missing (used by ${kind} ${d})` });
        }
      } catch (e) {
        problems.push({ digest: d, problem: (e as Error).message });
      }
    };
    const images = new Set<Digest>([...Object.values(refs.tags), ...Object.values(refs.boxes).map((b) => b.image)]);
    for (const d of images) {
      live.add(d);
      try {
        const m = await this.manifest(d);
        for (const l of m.layers) await visitTable(l.digest, 'layer');
      } catch (e) {
        problems.push({ digest: d, problem: (e as Error).message });
      }
    }
    for (const b of Object.values(refs.boxes)) if (b.upper) await visitTable(b.upper, 'upper');
    return live;
  }

  /** Removes every blob no tag or box reaches. */
  async gc(): Promise<{ blobs: number; bytes: number }> {
    return this.backend.lock(() => this.collect());
  }

  /** Verifies every blob against its digest and that every tag and box reaches only sound blobs. */
  async fsck(): Promise<FsckReport> {
    const problems = await this.backend.verify();
    const seen = new Set(problems.map((p) => p.digest));
    const more: BlobProblem[] = [];
    await this.reachable(more);
    await this.checkJournals(more);
    for (const p of more) if (!seen.has(p.digest)) problems.push(p);
    return { blobs: (await this.backend.stats()).blobs, problems };
  }

  /** A box's journal not yet folded in: its chunks are checked against their digests, and every chunk its state names must be in it or in the store. */
  private async checkJournals(problems: BlobProblem[]): Promise<void> {
    if (!this.backend.readJournal) return;
    const refs = await this.backend.readRefs();
    for (const [box, r] of Object.entries(refs.boxes)) {
      const where = `journal of box ${box}`;
      try {
        const src = await this.backend.readJournal(box);
        if (!src?.size) continue;
        const scan = await scanJournal(src, (b) => this.digest(b), { verify: true });
        if (!journalApplies(scan, { box, image: r.image, upper: r.upper, created: r.created }) || !scan.metas.length) continue;
        const base = r.upper && this.backend.hasBlob(r.upper) ? decodeLayer(await this.backend.getBlob(r.upper), `upper ${r.upper}`, 'upper') : null;
        const table = replayTable(base, scan.metas, this.chunkSize);
        for (const c of table ? new Set(chunksOf(table)) : []) if (!scan.chunks.has(c) && !this.backend.hasBlob(c)) problems.push({ digest: c, where, problem: `chunk missing (named by the ${where})` });
      } catch (e) {
        problems.push({ where, problem: (e as Error).message });
      }
    }
  }
}

export { checkLimits } from './backend.js';
