import { type Digest, isDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import type { ImageManifest } from '../image.js';
import { fromUtf8, utf8 } from '../text.js';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeign: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** Manifest annotation: the layerbox image manifest (its canonical JSON), so an import can keep the image digest. */
export const LAYERBOX_IMAGE = 'dev.layerbox.image';
/** Layer descriptor annotation: the digest of the layerbox layer table the layer was made from. */
export const LAYERBOX_LAYER = 'dev.layerbox.layer';
export const ARCHITECTURE = 'wasm';
export const OS = 'wasip1';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string };
}

/** The OCI image config of a layerbox image (docker archives use the same document). */
export function imageConfigJson(m: ImageManifest, diffIds: Digest[]): Uint8Array {
  const doc = {
    created: m.created,
    architecture: ARCHITECTURE,
    os: OS,
    config: { Env: m.config.env, Cmd: m.config.cmd, WorkingDir: m.config.workingDir },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: m.history.map((h) => ({ created: h.created, created_by: h.createdBy, ...(h.comment ? { comment: h.comment } : {}) })),
  };
  return utf8(JSON.stringify(doc));
}

export function ociManifestJson(config: Descriptor, layers: Descriptor[], annotations?: Record<string, string>): Uint8Array {
  return utf8(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, config, layers, ...(annotations ? { annotations } : {}) }));
}

export function ociIndexJson(manifests: Descriptor[]): Uint8Array {
  return utf8(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests }));
}

export const OCI_LAYOUT = utf8(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

/** Parses a JSON document of an archive, or fails naming it. */
export function parseJson(bytes: Uint8Array, what: string): any {
  try {
    return JSON.parse(fromUtf8(bytes));
  } catch {
    throw new LayerboxError(`${what} is not valid JSON`, { code: 'CORRUPT' });
  }
}

/** Checks a descriptor's shape: a sha256 digest, a non-negative size. */
export function checkDescriptor(d: any, what: string): Descriptor {
  if (!d || typeof d !== 'object') throw new LayerboxError(`${what}: missing descriptor`, { code: 'CORRUPT' });
  if (!isDigest(d.digest)) throw new LayerboxError(`${what}: unsupported or invalid digest ${JSON.stringify(d.digest)} (expected sha256:<64 hex digits>)`, { code: 'CORRUPT' });
  if (d.size !== undefined && !(Number.isSafeInteger(d.size) && d.size >= 0)) throw new LayerboxError(`${what}: invalid size ${JSON.stringify(d.size)}`, { code: 'CORRUPT' });
  return d as Descriptor;
}
