import { type Digest, isDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { parseTag } from '../image.js';
import type { Store } from '../store/store.js';
import { type TarEntry, tarPieces, writeTar } from '../tar.js';
import { encodeImage } from '../image.js';
import { fromUtf8 } from '../text.js';
import { type Descriptor, LAYERBOX_IMAGE, LAYERBOX_LAYER, MEDIA, OCI_LAYOUT, REF_NAME, imageConfigJson, ociIndexJson, ociManifestJson } from './format.js';
import { layerTarEntries } from './layer.js';
import { utf8 } from '../text.js';

export type OciFormat = 'oci' | 'docker';

export interface OciExportOptions {
  format: OciFormat;
  /** Deterministic gzip (fixed level, no timestamp, no name): the host's zlib. Needed for `oci`. */
  gzip?: (tar: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /**
   * `oci` only: annotate each manifest with the layerbox image manifest
   * (`dev.layerbox.image`) and each layer with its layer table digest
   * (`dev.layerbox.layer`), so an import can keep the image's digest.
   */
  layerboxAnnotations?: boolean;
  /**
   * Where layers go when they may be too big to hold (a file of gigabytes):
   * takes the layer tar as pieces (`tar()` makes them again, the same, on
   * every call), keeps or remakes the blob (for `oci` gzipped with the
   * deterministic gzip), and gives back the tar's digest (the diff id), the
   * blob's digest and size, and its bytes again as pieces. Without it, each
   * layer is built in memory with `gzip`.
   */
  layerSink?: (tar: () => Iterable<Uint8Array>, gzip: boolean) => Promise<StoredLayer>;
}

/** A layer blob kept by a `layerSink`. */
export interface StoredLayer {
  diffId: Digest;
  digest: Digest;
  size: number;
  body: () => Iterable<Uint8Array>;
}

type BlobContent = { data: Uint8Array } | { size: number; body: () => Iterable<Uint8Array> };

function safeTag(ref: string): string | null {
  try {
    return parseTag(ref);
  } catch {
    return null;
  }
}

const file = (path: string, data: Uint8Array | BlobContent): TarEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, ...(data instanceof Uint8Array ? { data } : data) });
const dir = (path: string): TarEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0 });

/**
 * Images as the members of an OCI image layout (`format: 'oci'`: `oci-layout`,
 * `index.json`, `blobs/sha256/...`, one gzip layer per layerbox layer) or of
 * a `docker save` archive (`manifest.json`, `<config>.json`,
 * `<diff_id>/layer.tar`, uncompressed). Deterministic: the same images give
 * the same bytes. Images named by a tag carry that tag; by digest, all of theirs.
 */
export async function exportOci(store: Store, images: string[], opts: OciExportOptions): Promise<TarEntry[]> {
  if (!images.length) throw new LayerboxError('nothing to export: name an image', { code: 'INVALID' });
  if (opts.format === 'oci' && !opts.gzip && !opts.layerSink) throw new LayerboxError('OCI export needs a gzip implementation', { code: 'INVALID' });
  const refs = await store.backend.readRefs();
  const blobs = new Map<string, Uint8Array | BlobContent>();
  /** Layer results by the digests of the layers up to it (a redirect's content depends on the layers below). */
  const layers = new Map<string, { diffId: Digest; blob: Descriptor; path: string }>();
  const indexEntries: Descriptor[] = [];
  const dockerEntries: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  for (const ref of images) {
    const digest = await store.resolveImage(ref, refs);
    const tag = isDigest(ref) ? null : safeTag(ref);
    const tags = tag && refs.tags[tag] === digest ? [tag] : Object.entries(refs.tags).filter(([, d]) => d === digest).map(([t]) => t).sort();
    const m = await store.manifest(digest);
    const lowers = await store.mountImage(m);
    const descs: Descriptor[] = [];
    const diffIds: Digest[] = [];
    const paths: string[] = [];
    for (let i = 0; i < lowers.length; i++) {
      const key = m.layers.slice(0, i + 1).map((l) => l.digest).join(',');
      let l = layers.get(key);
      if (!l) {
        const entries = layerTarEntries(lowers, i, store.overlayOptions(), `layer ${i + 1} (${m.layers[i]!.digest}) of ${ref}`);
        const gz = opts.format === 'oci';
        if (opts.layerSink) {
          // Streamed: the tar is made piece by piece as the sink takes it.
          const s = await opts.layerSink(() => tarPieces(entries), gz);
          const path = gz ? `blobs/sha256/${s.digest.slice(7)}` : `${s.diffId.slice(7)}/layer.tar`;
          blobs.set(path, { size: s.size, body: s.body });
          l = { diffId: s.diffId, blob: { mediaType: gz ? MEDIA.layerGzip : MEDIA.layerTar, digest: s.digest, size: s.size }, path };
        } else {
          const tar = writeTar(entries);
          const diffId = store.digest(tar);
          if (gz) {
            const gzb = await opts.gzip!(tar);
            const d = store.digest(gzb);
            const path = `blobs/sha256/${d.slice(7)}`;
            blobs.set(path, gzb);
            l = { diffId, blob: { mediaType: MEDIA.layerGzip, digest: d, size: gzb.length }, path };
          } else {
            const path = `${diffId.slice(7)}/layer.tar`;
            blobs.set(path, tar);
            l = { diffId, blob: { mediaType: MEDIA.layerTar, digest: diffId, size: tar.length }, path };
          }
        }
        layers.set(key, l);
      }
      descs.push(opts.layerboxAnnotations && opts.format === 'oci' ? { ...l.blob, annotations: { [LAYERBOX_LAYER]: m.layers[i]!.digest } } : l.blob);
      diffIds.push(l.diffId);
      paths.push(l.path);
    }
    const config = imageConfigJson(m, diffIds);
    const configDigest = store.digest(config);
    if (opts.format === 'oci') {
      blobs.set(`blobs/sha256/${configDigest.slice(7)}`, config);
      const annotations = opts.layerboxAnnotations ? { [LAYERBOX_IMAGE]: fromUtf8(encodeImage(m)) } : undefined;
      const manifest = ociManifestJson({ mediaType: MEDIA.config, digest: configDigest, size: config.length }, descs, annotations);
      const md = store.digest(manifest);
      blobs.set(`blobs/sha256/${md.slice(7)}`, manifest);
      const desc = { mediaType: MEDIA.manifest, digest: md, size: manifest.length };
      if (!tags.length) indexEntries.push(desc);
      for (const t of tags) indexEntries.push({ ...desc, annotations: { [REF_NAME]: t } });
    } else {
      const path = `${configDigest.slice(7)}.json`;
      blobs.set(path, config);
      dockerEntries.push({ Config: path, RepoTags: tags.length ? tags : null, Layers: paths });
    }
  }
  const out: TarEntry[] = [];
  if (opts.format === 'oci') {
    out.push(file('oci-layout', OCI_LAYOUT), file('index.json', ociIndexJson(indexEntries)), dir('blobs'), dir('blobs/sha256'));
    for (const p of [...blobs.keys()].sort()) out.push(file(p, blobs.get(p)!));
  } else {
    out.push(file('manifest.json', utf8(JSON.stringify(dockerEntries))));
    const dirs = new Set<string>();
    for (const p of [...blobs.keys()].sort()) {
      const d = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : null;
      if (d && !dirs.has(d)) {
        dirs.add(d);
        out.push(dir(d));
      }
      out.push(file(p, blobs.get(p)!));
    }
  }
  return out;
}
