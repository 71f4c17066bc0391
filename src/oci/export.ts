import { type Digest, isDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { parseTag } from '../image.js';
import type { Store } from '../store/store.js';
import { type TarEntry, writeTar } from '../tar.js';
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
}

function safeTag(ref: string): string | null {
  try {
    return parseTag(ref);
  } catch {
    return null;
  }
}

const file = (path: string, data: Uint8Array): TarEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data });
const dir = (path: string): TarEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0 });

/**
 * Images as the members of an OCI image layout (`format: 'oci'`: `oci-layout`,
 * `index.json`, `blobs/sha256/...`, one gzip layer per layerbox layer) or of
 * a `docker save` archive (`manifest.json`, `<config>.json`,
 * `<diff_id>/layer.tar`, uncompressed). Deterministic: the same images give
 * the same bytes. Images named by a tag carry that tag; by digest, all of theirs.
 */
export async function exportOci(store: Store, images: string[], opts: OciExportOptions): Promise<TarEntry[]> {
  if (!images.length) throw new LayerboxError('nothing to export: name an image');
  if (opts.format === 'oci' && !opts.gzip) throw new LayerboxError('OCI export needs a gzip implementation');
  const refs = await store.backend.readRefs();
  const blobs = new Map<string, Uint8Array>();
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
        const tar = writeTar(layerTarEntries(lowers, i, store.overlayOptions(), `layer ${i + 1} (${m.layers[i]!.digest}) of ${ref}`));
        const diffId = store.digest(tar);
        if (opts.format === 'oci') {
          const gz = await opts.gzip!(tar);
          const d = store.digest(gz);
          const path = `blobs/sha256/${d.slice(7)}`;
          blobs.set(path, gz);
          l = { diffId, blob: { mediaType: MEDIA.layerGzip, digest: d, size: gz.length }, path };
        } else {
          const path = `${diffId.slice(7)}/layer.tar`;
          blobs.set(path, tar);
          l = { diffId, blob: { mediaType: MEDIA.layerTar, digest: diffId, size: tar.length }, path };
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
