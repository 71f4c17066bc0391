import { addTarBytes, addTarStream } from '../archive.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { type Digest, isDigest, toHex } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { type ImageConfig, decodeImage, parseTag } from '../image.js';
import { utf8 } from '../text.js';
import type { Store } from '../store/store.js';
import type { LayerBuilder } from '../builder.js';
import { LAYERBOX_IMAGE, LAYERBOX_LAYER, MEDIA, REF_NAME, type Descriptor, OS, checkDescriptor, parseJson } from './format.js';

/** Reads a member of an archive (an OCI layout or a docker save archive) by its relative path; null when missing. */
export type ArchiveReader = (path: string) => Promise<Uint8Array | null>;

export interface OciImportOptions {
  /** Tag for the (single) image instead of the archive's own names. */
  tag?: string;
  /** The host's gunzip; a bad or truncated stream must throw. */
  gunzip: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /**
   * Optional: members as streams. With it, every layer is read, unpacked,
   * verified and stored as it streams, never held whole (a small gzip layer
   * may unpack to gigabytes).
   */
  streams?: ArchiveStreams;
  /** The host's streaming gunzip (needed for big gzip layers); a bad or truncated stream must throw. */
  gunzipStream?: (data: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;
  /** An incremental sha256 (the host's, faster than the portable one). */
  hasher?: () => StreamHasher;
}

/** Members of an archive as streams: their size (null when missing) and their bytes in pieces. */
export interface ArchiveStreams {
  size(path: string): Promise<number | null>;
  stream(path: string): AsyncIterable<Uint8Array>;
}

export interface StreamHasher {
  update(b: Uint8Array): void;
  digest(): Digest;
}

/** A member too big to hold: its size and its bytes as a stream. */
interface BigMember {
  size: number;
  stream: () => AsyncIterable<Uint8Array>;
}

const portableHasher = (): StreamHasher => {
  const h = sha256.create();
  return { update: (b) => void h.update(b), digest: () => `sha256:${toHex(h.digest())}` };
};

export type OciArchiveKind = 'oci' | 'docker';

/** What kind of archive the reader holds: an OCI layout, a docker save archive, or neither (null). */
export async function detectOciArchive(read: ArchiveReader): Promise<OciArchiveKind | null> {
  if ((await read('oci-layout')) && (await read('index.json'))) return 'oci';
  if (await read('manifest.json')) return 'docker';
  return null;
}

/** One image of the archive, fully read and verified before anything is stored. */
interface Planned {
  what: string;
  /** A layer's tar: bytes, or (a big layer) a stream that checks the diff_id as it ends. */
  layers: Array<{ tar: Uint8Array | (() => AsyncGenerator<Uint8Array>); digest: Digest }>;
  config: ImageConfig;
  history: Array<{ created?: string; createdBy: string; comment: string }>;
  tags: string[];
  /** The layerbox annotations of an OCI manifest (dev.layerbox.image, dev.layerbox.layer per layer), when present. */
  layerbox?: { image: string; layers: Array<string | undefined> };
}

const GZIP = [0x1f, 0x8b], ZSTD = [0x28, 0xb5, 0x2f, 0xfd];
const starts = (b: Uint8Array, magic: number[]) => b.length >= magic.length && magic.every((x, i) => b[i] === x);

/** A safe relative member path (a docker manifest names its files): no `..`, not absolute. */
function memberPath(p: unknown, what: string): string {
  if (typeof p !== 'string' || p === '') throw new LayerboxError(`${what}: missing path`, { code: 'CORRUPT' });
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (p.startsWith('/') || parts.includes('..') || p.includes('\0')) throw new LayerboxError(`${what}: refusing path ${JSON.stringify(p)}`, { code: 'CORRUPT' });
  return parts.join('/');
}

/** A reference as a layerbox tag; Docker Hub's implicit prefixes dropped (`docker.io/library/x:1` is `x:1`). */
function tagOf(ref: unknown, what: string): string {
  if (typeof ref !== 'string') throw new LayerboxError(`${what}: a reference must be a string, got ${JSON.stringify(ref)}`, { code: 'CORRUPT' });
  try {
    return parseTag(ref.replace(/^(?:docker\.io|index\.docker\.io)\/(?:library\/)?/, ''));
  } catch (e) {
    throw new LayerboxError(`${what}: cannot use ${JSON.stringify(ref)} as a tag: ${(e as Error).message}`, { code: 'INVALID' });
  }
}

class Reader {
  private gunzip: OciImportOptions['gunzip'];
  constructor(private store: Store, private read: ArchiveReader, private opts: OciImportOptions) {
    this.gunzip = opts.gunzip;
  }

  /** A layer member as a stream, when the archive can stream; null otherwise. */
  async big(path: string): Promise<BigMember | null> {
    const streams = this.opts.streams;
    if (!streams) return null;
    const size = await streams.size(path);
    if (size === null) return null;
    return { size, stream: () => streams.stream(path) };
  }

  /** A stream passed through unchanged, hashed as it goes; at its end a mismatch with `digest` throws. */
  async *checked(src: AsyncIterable<Uint8Array>, digest: Digest, what: string, size?: number): AsyncGenerator<Uint8Array> {
    const h = (this.opts.hasher ?? portableHasher)();
    let n = 0;
    for await (const p of src) {
      h.update(p);
      n += p.length;
      yield p;
    }
    const got = h.digest();
    if (got !== digest) throw new LayerboxError(`${what}: blob ${digest} does not match its digest (its content hashes to ${got})`, { code: 'CORRUPT' });
    if (size !== undefined && n !== size) throw new LayerboxError(`${what}: blob ${digest} has ${n} bytes, its descriptor says ${size}`, { code: 'CORRUPT' });
  }

  /** A layer blob of an OCI layout: bytes, or a checked stream when it is big. */
  async layerBlob(d: Descriptor, what: string): Promise<Uint8Array | BigMember> {
    const big = await this.big(`blobs/sha256/${d.digest.slice(7)}`);
    if (!big) return this.blob(d, what);
    // The digest is checked before the size, as for a blob read whole.
    return { size: big.size, stream: () => this.checked(big.stream(), d.digest, what, d.size) };
  }

  /** A big layer as its uncompressed tar, streamed: gzip detected by its magic, the diff_id checked at its end. */
  async *layerStream(b: BigMember, diffId: Digest, what: string): AsyncGenerator<Uint8Array> {
    const src = b.stream()[Symbol.asyncIterator]();
    const first = await src.next();
    if (first.done) throw new LayerboxError(`${what}: empty layer`, { code: 'CORRUPT' });
    const head = first.value;
    if (starts(head, ZSTD)) throw new LayerboxError(`${what}: zstd-compressed layers are not supported`, { code: 'UNSUPPORTED' });
    const whole = (async function* () {
      yield head;
      for (let r = await src.next(); !r.done; r = await src.next()) yield r.value;
    })();
    const gz = starts(head, GZIP);
    if (gz && !this.opts.gunzipStream) throw new LayerboxError(`${what}: a gzip layer of ${b.size} bytes needs a streaming gunzip`, { code: 'INVALID' });
    const tar = gz ? this.opts.gunzipStream!(whole) : whole;
    const h = (this.opts.hasher ?? portableHasher)();
    const it = tar[Symbol.asyncIterator]();
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await it.next();
      } catch (e) {
        if (e instanceof LayerboxError || !gz) throw e;
        throw new LayerboxError(`${what}: bad gzip stream: ${(e as Error)?.message ?? e}`, { code: 'CORRUPT' });
      }
      if (r.done) break;
      h.update(r.value);
      yield r.value;
    }
    const got = h.digest();
    if (got !== diffId) throw new LayerboxError(`${what}: uncompressed layer hashes to ${got}, but the image config's diff_id is ${diffId}`, { code: 'CORRUPT' });
  }

  async member(path: string, what: string): Promise<Uint8Array> {
    const b = await this.read(path);
    if (!b) throw new LayerboxError(`${what}: ${path} is missing from the archive`, { code: 'CORRUPT' });
    return b;
  }

  /** A blob of an OCI layout, checked against its descriptor's digest and size. */
  async blob(d: Descriptor, what: string): Promise<Uint8Array> {
    const b = await this.member(`blobs/sha256/${d.digest.slice(7)}`, what);
    this.verify(b, d.digest, what);
    if (d.size !== undefined && b.length !== d.size) throw new LayerboxError(`${what}: blob ${d.digest} has ${b.length} bytes, its descriptor says ${d.size}`, { code: 'CORRUPT' });
    return b;
  }

  verify(b: Uint8Array, digest: Digest, what: string): void {
    const got = this.store.digest(b);
    if (got !== digest) throw new LayerboxError(`${what}: blob ${digest} does not match its digest (its content hashes to ${got})`, { code: 'CORRUPT' });
  }

  /** A layer as an uncompressed tar (gzip detected by its magic), checked against its diff_id. */
  async layer(b: Uint8Array | BigMember, diffId: unknown, what: string): Promise<Planned['layers'][number]['tar']> {
    if (!isDigest(diffId)) throw new LayerboxError(`${what}: invalid diff_id ${JSON.stringify(diffId)}`, { code: 'CORRUPT' });
    if (!(b instanceof Uint8Array)) return () => this.layerStream(b, diffId, what);
    let tar = b;
    if (starts(b, ZSTD)) throw new LayerboxError(`${what}: zstd-compressed layers are not supported`, { code: 'UNSUPPORTED' });
    if (starts(b, GZIP)) {
      try {
        tar = await this.gunzip(b);
      } catch (e) {
        throw new LayerboxError(`${what}: bad gzip stream: ${(e as Error)?.message ?? e}`, { code: 'CORRUPT' });
      }
    }
    const got = this.store.digest(tar);
    if (got !== diffId) throw new LayerboxError(`${what}: uncompressed layer hashes to ${got}, but the image config's diff_id is ${diffId}`, { code: 'CORRUPT' });
    return tar;
  }

  /** Config, history and layers of one image config document and its layer blobs. */
  async plan(configDoc: any, layerBlobs: Array<() => Promise<Uint8Array | BigMember>>, tags: string[], what: string): Promise<Planned> {
    if (!configDoc || typeof configDoc !== 'object') throw new LayerboxError(`${what}: bad image config`, { code: 'CORRUPT' });
    const diffIds = configDoc.rootfs?.diff_ids;
    if (!Array.isArray(diffIds)) throw new LayerboxError(`${what}: the image config has no rootfs.diff_ids`, { code: 'CORRUPT' });
    if (diffIds.length !== layerBlobs.length) throw new LayerboxError(`${what}: ${layerBlobs.length} layers but ${diffIds.length} diff_ids`, { code: 'CORRUPT' });
    if (!layerBlobs.length) throw new LayerboxError(`${what}: the image has no layers`, { code: 'CORRUPT' });
    const layers: Planned['layers'] = [];
    for (let i = 0; i < layerBlobs.length; i++) {
      const lw = `${what}, layer ${i + 1}`;
      layers.push({ tar: await this.layer(await layerBlobs[i]!(), diffIds[i], lw), digest: diffIds[i] });
    }
    const c = configDoc.config ?? {};
    const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'string') : []);
    const config: ImageConfig = { env: strings(c.Env), cmd: [...strings(c.Entrypoint), ...strings(c.Cmd)], workingDir: typeof c.WorkingDir === 'string' && c.WorkingDir ? c.WorkingDir : '/' };
    const created = typeof configDoc.created === 'string' ? configDoc.created : undefined;
    const rows = (Array.isArray(configDoc.history) ? configDoc.history : []).filter((h: any) => h && !h.empty_layer);
    const history = layers.map((_, i) => {
      const h = rows.length === layers.length ? rows[i] : null;
      return {
        created: typeof h?.created === 'string' ? h.created : created,
        createdBy: typeof h?.created_by === 'string' ? h.created_by : 'layerbox import',
        comment: typeof h?.comment === 'string' ? h.comment : '',
      };
    });
    return { what, layers, config, history, tags };
  }

  async planOci(): Promise<Planned[]> {
    const layout = parseJson(await this.member('oci-layout', 'OCI layout'), 'oci-layout');
    if (typeof layout?.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) throw new LayerboxError(`unsupported OCI layout version ${JSON.stringify(layout?.imageLayoutVersion)}`, { code: 'INVALID' });
    const index = parseJson(await this.member('index.json', 'OCI layout'), 'index.json');
    if (!Array.isArray(index?.manifests)) throw new LayerboxError('index.json has no manifests', { code: 'CORRUPT' });
    /** Manifest digest -> tags (several index entries may name one manifest). */
    const found = new Map<Digest, { desc: Descriptor; tags: string[] }>();
    const visit = async (entries: any[], what: string, depth: number, name?: string): Promise<void> => {
      // An index naming nothing imports nothing: say so rather than succeed silently.
      if (!entries.length) throw new LayerboxError(`${what} lists no manifests`, { code: 'CORRUPT' });
      let list = entries.map((e, i) => checkDescriptor(e, `${what}, manifest ${i + 1}`));
      if (depth > 0 && list.length > 1) {
        // A multi-platform index: take the WASI image.
        list = list.filter((d) => d.platform?.os === OS);
        if (list.length !== 1) throw new LayerboxError(`${what}: a multi-platform index without exactly one ${OS} image is not supported`, { code: 'UNSUPPORTED' });
      }
      for (const d of list) {
        const ref = d.annotations?.[REF_NAME] ?? name;
        if (d.mediaType === MEDIA.index || d.mediaType === MEDIA.dockerList) {
          if (depth > 2) throw new LayerboxError(`${what}: indexes nested too deep`, { code: 'UNSUPPORTED' });
          const doc = parseJson(await this.blob(d, `${what}, index ${d.digest}`), `index ${d.digest}`);
          if (!Array.isArray(doc?.manifests)) throw new LayerboxError(`index ${d.digest} has no manifests`, { code: 'CORRUPT' });
          await visit(doc.manifests, `index ${d.digest}`, depth + 1, ref);
          continue;
        }
        if (d.mediaType !== undefined && d.mediaType !== MEDIA.manifest && d.mediaType !== MEDIA.dockerManifest) throw new LayerboxError(`${what}: unsupported manifest media type ${JSON.stringify(d.mediaType)}`, { code: 'INVALID' });
        const f = found.get(d.digest) ?? { desc: d, tags: [] };
        if (ref !== undefined) f.tags.push(tagOf(ref, `${what}, ${REF_NAME}`));
        found.set(d.digest, f);
      }
    };
    await visit(index.manifests, 'index.json', 0);
    const out: Planned[] = [];
    for (const { desc, tags } of found.values()) {
      const what = `image manifest ${desc.digest}`;
      const m = parseJson(await this.blob(desc, what), what);
      if (m?.schemaVersion !== 2) throw new LayerboxError(`${what}: unsupported schemaVersion ${JSON.stringify(m?.schemaVersion)}`, { code: 'INVALID' });
      const cd = checkDescriptor(m.config, `${what}, config`);
      const configDoc = parseJson(await this.blob(cd, `${what}, config`), `${what}, config`);
      if (!Array.isArray(m.layers)) throw new LayerboxError(`${what}: no layers`, { code: 'CORRUPT' });
      const layerDescs = m.layers.map((l: any, i: number) => checkDescriptor(l, `${what}, layer ${i + 1}`));
      for (const [i, l] of layerDescs.entries())
        if (l.mediaType === MEDIA.layerZstd || /zstd/.test(l.mediaType ?? '')) throw new LayerboxError(`${what}, layer ${i + 1}: zstd-compressed layers are not supported`, { code: 'UNSUPPORTED' });
      const p = await this.plan(configDoc, layerDescs.map((l: Descriptor, i: number) => () => this.layerBlob(l, `${what}, layer ${i + 1}`)), [...new Set(tags)], what);
      const image = m.annotations?.[LAYERBOX_IMAGE];
      if (typeof image === 'string') p.layerbox = { image, layers: layerDescs.map((l: Descriptor) => l.annotations?.[LAYERBOX_LAYER]) };
      out.push(p);
    }
    return out;
  }

  async planDocker(): Promise<Planned[]> {
    const doc = parseJson(await this.member('manifest.json', 'docker archive'), 'manifest.json');
    if (!Array.isArray(doc) || !doc.length) throw new LayerboxError('manifest.json lists no images', { code: 'CORRUPT' });
    const out: Planned[] = [];
    for (const [n, e] of doc.entries()) {
      const what = `manifest.json, image ${n + 1}`;
      const configPath = memberPath(e?.Config, `${what}, Config`);
      const config = await this.member(configPath, what);
      // Members named by a digest (`<hex>.json`, `blobs/sha256/<hex>`) are checked against it.
      const named = (p: string) => /^(?:.*\/)?(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(p)?.[1];
      const ch = named(configPath);
      if (ch) this.verify(config, `sha256:${ch}`, `${what}, config`);
      if (!Array.isArray(e.Layers)) throw new LayerboxError(`${what}: no Layers`, { code: 'CORRUPT' });
      const layerPaths = e.Layers.map((p: unknown, i: number) => memberPath(p, `${what}, layer ${i + 1}`));
      const tags = (Array.isArray(e.RepoTags) ? e.RepoTags : []).map((t: unknown) => tagOf(t, `${what}, RepoTags`));
      out.push(await this.plan(parseJson(config, `${what}, config`), layerPaths.map((p: string, i: number) => async () => {
        const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(p);
        const big = await this.big(p);
        if (big) return m ? { size: big.size, stream: () => this.checked(big.stream(), `sha256:${m[1]}`, `${what}, layer ${i + 1}`) } : big;
        const b = await this.member(p, `${what}, layer ${i + 1}`);
        if (m) this.verify(b, `sha256:${m[1]}`, `${what}, layer ${i + 1}`);
        return b;
      }), tags, what));
    }
    return out;
  }
}

/**
 * The image as it was exported, when the import rebuilt exactly its layers:
 * every layer table just stacked has the digest its `dev.layerbox.layer`
 * annotation names, and the `dev.layerbox.image` manifest lists those same
 * layers with this store's chunk size. Its bytes are then stored verbatim, so
 * the image keeps its digest (its config and history come from it too).
 * Otherwise a note says why not, and the stacked image stands.
 */
async function keepLayerboxImage(store: Store, stacked: Digest, ann: NonNullable<Planned['layerbox']>): Promise<{ digest: Digest } | { note: string }> {
  const bytes = utf8(ann.image);
  let m;
  try {
    m = decodeImage(bytes, 'the dev.layerbox.image annotation');
  } catch (e) {
    return { note: (e as Error).message };
  }
  const got = (await store.manifest(stacked)).layers.map((l) => l.digest);
  if (m.chunkSize !== store.chunkSize) return { note: `the image uses ${m.chunkSize}-byte chunks, this store ${store.chunkSize}` };
  if (m.layers.length !== got.length || ann.layers.length !== got.length) return { note: `the annotations name ${m.layers.length} layers, the image has ${got.length}` };
  for (let i = 0; i < got.length; i++) {
    if (ann.layers[i] !== m.layers[i]!.digest) return { note: `layer ${i + 1}: its dev.layerbox.layer annotation does not match the image manifest` };
    if (got[i] !== m.layers[i]!.digest) return { note: `layer ${i + 1} rebuilt as ${got[i]}, not ${m.layers[i]!.digest} (its tar cannot say everything, e.g. a renamed directory)` };
  }
  const digest = store.digest(bytes);
  await store.backend.lock(() => store.backend.putBlobs([{ digest, data: bytes }]));
  return { digest };
}

/**
 * Imports the images of an OCI image layout or a docker save archive, each
 * layer (gzip or plain tar) as a layerbox layer, stacked into one image that
 * keeps the config (Env, Cmd with Entrypoint first, WorkingDir) and history.
 * Every blob is checked against its digest and every uncompressed layer
 * against its diff_id before anything is stored; a bad layer (`..` paths, a
 * bad tar) is refused while stacking, before any tag is written. Tags come
 * from `org.opencontainers.image.ref.name` / `RepoTags`, or `opts.tag`.
 * An OCI manifest made by layerbox (`layerboxAnnotations`) that rebuilds to
 * the same layer tables keeps its image digest; when it does not, the result
 * carries a one-line `note` saying why.
 */
export async function importOci(store: Store, read: ArchiveReader, opts: OciImportOptions): Promise<Array<{ digest: Digest; tags: string[]; note?: string }>> {
  const kind = await detectOciArchive(read);
  if (!kind) throw new LayerboxError('not an OCI image layout or a docker save archive', { code: 'INVALID' });
  const r = new Reader(store, read, opts);
  const plans = kind === 'oci' ? await r.planOci() : await r.planDocker();
  if (opts.tag !== undefined) {
    if (plans.length !== 1) throw new LayerboxError(`--tag needs an archive with one image; this one has ${plans.length}`, { code: 'INVALID' });
    plans[0]!.tags = [parseTag(opts.tag)];
  }
  // Stack every image untagged first, then tag them all: a bad layer leaves no tag behind.
  const done: Array<{ digest: Digest; tags: string[]; note?: string }> = [];
  for (const p of plans) {
    let parent: Digest | null = null;
    for (let i = 0; i < p.layers.length; i++) {
      const l = p.layers[i]!, h = p.history[i]!;
      try {
        const tar = l.tar;
        const fill = tar instanceof Uint8Array ? (b: LayerBuilder) => addTarBytes(b, tar) : async (b: LayerBuilder) => {
          const stream = tar();
          await addTarStream(b, stream);
          // The tar may end before its stream does (padding): read on, so the digests are checked.
          for await (const _ of stream);
        };
        parent = await store.importLayerOnto(parent, fill, { created: h.created, createdBy: h.createdBy, comment: h.comment, config: p.config });
      } catch (e) {
        // Streamed layers fail with messages that already name the layer: say it once.
        const where = `${p.what}, layer ${i + 1}`;
        if (e instanceof LayerboxError) throw new LayerboxError(e.message.startsWith(`${where}`) ? e.message : `${where} (${l.digest}): ${e.message}`, { code: e.code, errno: e.errno, cause: e });
        throw e;
      }
    }
    const kept = p.layerbox ? await keepLayerboxImage(store, parent!, p.layerbox) : null;
    if (kept && 'digest' in kept) done.push({ digest: kept.digest, tags: p.tags });
    else done.push({ digest: parent!, tags: p.tags, ...(kept ? { note: `${p.what}: imported as a new image (digest not kept: ${kept.note})` } : {}) });
  }
  if (done.some((d) => d.tags.length)) {
    await store.backend.lock(async () => {
      const refs = await store.backend.readRefs();
      for (const d of done) for (const t of d.tags) refs.tags[t] = d.digest;
      await store.backend.writeRefs(refs);
    });
  }
  return done;
}
