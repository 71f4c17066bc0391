import { type Digest, assertDigest } from './digest.js';
import { LayerboxError } from './errno.js';
import { fromUtf8, utf8 } from './text.js';

export interface ImageConfig {
  /** `KEY=value` strings, as in OCI. */
  env: string[];
  workingDir: string;
  /** Default command: a program path in the image and its arguments. */
  cmd: string[];
}

export interface LayerRef {
  digest: Digest;
  /** Bytes of the layer table. */
  size: number;
  /** Bytes of the chunks this layer added (its own data, before dedup). */
  dataSize: number;
  entries: number;
}

export interface HistoryEntry {
  created: string;
  createdBy: string;
  comment: string;
  layer: Digest;
}

/** An image: its layers bottom first, config and history. Named by the digest of its encoding. */
export interface ImageManifest {
  chunkSize: number;
  layers: LayerRef[];
  config: ImageConfig;
  history: HistoryEntry[];
  parent: Digest | null;
  created: string;
}

const MAGIC = 'layerbox-image';
const VERSION = 1;

/** Canonical JSON (fixed key order), starting with the magic and version. */
export function encodeImage(m: ImageManifest): Uint8Array {
  const doc = {
    magic: MAGIC,
    version: VERSION,
    chunkSize: m.chunkSize,
    created: m.created,
    parent: m.parent,
    config: { env: m.config.env, workingDir: m.config.workingDir, cmd: m.config.cmd },
    layers: m.layers.map((l) => ({ digest: l.digest, size: l.size, dataSize: l.dataSize, entries: l.entries })),
    history: m.history.map((h) => ({ created: h.created, createdBy: h.createdBy, comment: h.comment, layer: h.layer })),
  };
  return utf8(JSON.stringify(doc));
}

export function decodeImage(bytes: Uint8Array, what: string): ImageManifest {
  let doc: any;
  try {
    doc = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new LayerboxError(`${what}: not an image manifest (invalid JSON)`);
  }
  if (doc?.magic !== MAGIC) throw new LayerboxError(`${what}: not an image manifest`);
  if (doc.version !== VERSION) throw new LayerboxError(`${what}: unsupported image manifest version ${doc.version} (this layerbox reads ${VERSION})`);
  if (!Array.isArray(doc.layers) || !doc.layers.length) throw new LayerboxError(`${what}: image has no layers`);
  const layers: LayerRef[] = doc.layers.map((l: any) => ({ digest: assertDigest(l.digest, `${what} layer digest`), size: +l.size || 0, dataSize: +l.dataSize || 0, entries: +l.entries || 0 }));
  return {
    chunkSize: doc.chunkSize,
    created: String(doc.created ?? ''),
    parent: doc.parent ? assertDigest(doc.parent, `${what} parent`) : null,
    config: { env: [...(doc.config?.env ?? [])], workingDir: String(doc.config?.workingDir ?? '/'), cmd: [...(doc.config?.cmd ?? [])] },
    layers,
    history: (doc.history ?? []).map((h: any) => ({ created: String(h.created), createdBy: String(h.createdBy), comment: String(h.comment ?? ''), layer: assertDigest(h.layer) })),
  };
}

const NAME_RE = /^[a-z0-9]+(?:[._\-/][a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** `name[:tag]` with the tag defaulting to `latest`, checked like Docker references. */
export function parseTag(ref: string): string {
  const i = ref.lastIndexOf(':');
  const name = i > 0 && !ref.slice(i).includes('/') ? ref.slice(0, i) : ref;
  const tag = i > 0 && !ref.slice(i).includes('/') ? ref.slice(i + 1) : 'latest';
  if (!NAME_RE.test(name)) throw new LayerboxError(`invalid image name ${JSON.stringify(name)}: use lowercase letters, digits and . _ - /`);
  if (!TAG_RE.test(tag)) throw new LayerboxError(`invalid tag ${JSON.stringify(tag)}`);
  return `${name}:${tag}`;
}

const BOX_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkBoxName(name: string): string {
  if (!BOX_RE.test(name)) throw new LayerboxError(`invalid box name ${JSON.stringify(name)}: use letters, digits and . _ - (at most 64)`);
  return name;
}
