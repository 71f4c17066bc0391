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
    throw new LayerboxError(`${what}: not an image manifest (invalid JSON)`, { code: 'CORRUPT' });
  }
  if (doc?.magic !== MAGIC) throw new LayerboxError(`${what}: not an image manifest`, { code: 'CORRUPT' });
  if (doc.version !== VERSION) throw new LayerboxError(`${what}: unsupported image manifest version ${doc.version} (this layerbox reads ${VERSION})`, { code: 'INVALID' });
  const bad = (why: string): never => {
    throw new LayerboxError(`${what}: ${why}`, { code: 'CORRUPT' });
  };
  const str = (v: unknown, field: string): string => (typeof v === 'string' ? v : bad(`${field} must be a string`));
  const strings = (v: unknown, field: string): string[] => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...v] : bad(`${field} must be a list of strings`));
  const count = (v: unknown, field: string): number => (v === undefined ? 0 : Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : bad(`${field} must be a non-negative integer`));
  if (!Array.isArray(doc.layers) || !doc.layers.length) bad('image has no layers');
  if (!Number.isSafeInteger(doc.chunkSize) || doc.chunkSize < 1 || doc.chunkSize > 64 * 1024 * 1024) bad(`bad chunk size ${JSON.stringify(doc.chunkSize)}`);
  const layers: LayerRef[] = doc.layers.map((l: any, i: number) => {
    if (!l || typeof l !== 'object') bad(`layer ${i + 1} is not an object`);
    return { digest: assertDigest(l.digest, `${what} layer digest`), size: count(l.size, 'layer size'), dataSize: count(l.dataSize, 'layer dataSize'), entries: count(l.entries, 'layer entries') };
  });
  const config = doc.config ?? {};
  if (typeof config !== 'object') bad('config must be an object');
  const history = doc.history ?? [];
  if (!Array.isArray(history)) bad('history must be a list');
  return {
    chunkSize: doc.chunkSize,
    created: doc.created === undefined ? '' : str(doc.created, 'created'),
    parent: doc.parent ? assertDigest(doc.parent, `${what} parent`) : null,
    config: { env: strings(config.env ?? [], 'config.env'), workingDir: config.workingDir === undefined ? '/' : str(config.workingDir, 'config.workingDir'), cmd: strings(config.cmd ?? [], 'config.cmd') },
    layers,
    history: history.map((h: any) => {
      if (!h || typeof h !== 'object') bad('a history entry is not an object');
      return { created: str(h.created, 'history created'), createdBy: str(h.createdBy, 'history createdBy'), comment: h.comment === undefined ? '' : str(h.comment, 'history comment'), layer: assertDigest(h.layer) };
    }),
  };
}

const NAME_RE = /^[a-z0-9]+(?:[._\-/][a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** `name[:tag]` with the tag defaulting to `latest`, checked like Docker references. */
export function parseTag(ref: string): string {
  const i = ref.lastIndexOf(':');
  const name = i > 0 && !ref.slice(i).includes('/') ? ref.slice(0, i) : ref;
  const tag = i > 0 && !ref.slice(i).includes('/') ? ref.slice(i + 1) : 'latest';
  if (!NAME_RE.test(name)) throw new LayerboxError(`invalid image name ${JSON.stringify(name)}: use lowercase letters, digits and . _ - /`, { code: 'INVALID' });
  if (!TAG_RE.test(tag)) throw new LayerboxError(`invalid tag ${JSON.stringify(tag)}`, { code: 'INVALID' });
  return `${name}:${tag}`;
}

const BOX_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkBoxName(name: string): string {
  if (!BOX_RE.test(name)) throw new LayerboxError(`invalid box name ${JSON.stringify(name)}: use letters, digits and . _ - (at most 64)`, { code: 'INVALID' });
  return name;
}
