// Push and pull images to an OCI distribution registry over HTTP(S), with the
// host's fetch (Node 20 and browsers): no Node APIs, so the browser entry can pull.
import { type Digest, isDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { parseTag } from '../image.js';
import type { Store } from '../store/store.js';
import { exportOci } from './export.js';
import { MEDIA, OCI_LAYOUT, ociIndexJson, parseJson } from './format.js';
import { importOci } from './import.js';

export interface RegistryRef {
  /** `host[:port]`. */
  host: string;
  repo: string;
  tag: string;
  /** `http://host` for 127.0.0.1 and localhost, else `https://host`. */
  base: string;
}

/** `host[:port]/repo[:tag]` (tag defaults to `latest`); the host part is required. */
export function parseRegistryRef(ref: string): RegistryRef {
  const slash = ref.indexOf('/');
  const host = slash > 0 ? ref.slice(0, slash) : '';
  if (!host || !(host.includes('.') || host.includes(':') || host === 'localhost'))
    throw new LayerboxError(`invalid registry reference ${JSON.stringify(ref)}: use HOST[:PORT]/REPO[:TAG], e.g. 127.0.0.1:5000/demo:v1`);
  const nt = parseTag(ref.slice(slash + 1));
  const i = nt.lastIndexOf(':');
  const hostname = host.replace(/:\d+$/, '');
  const plain = hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
  return { host, repo: nt.slice(0, i), tag: nt.slice(i + 1), base: `${plain ? 'http' : 'https'}://${host}` };
}

interface Res {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
}
export type RegistryFetch = (url: string, init?: { method?: string; headers?: Record<string, string>; body?: Uint8Array }) => Promise<Res>;

export interface PushOptions {
  /** Deterministic gzip for the layers (the host's zlib). */
  gzip: (tar: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  fetch?: RegistryFetch;
  onProgress?: (msg: string) => void;
}

export interface PushResult {
  /** The OCI manifest's digest. */
  manifest: Digest;
  /** Blobs (config and layers) uploaded and already present. */
  uploaded: number;
  skipped: number;
  /** Of those, layer blobs. */
  layersUploaded: number;
  layersSkipped: number;
}

export interface PullOptions {
  gunzip: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /** Tag for the image instead of the reference's `repo:tag`. */
  tag?: string;
  fetch?: RegistryFetch;
}

export interface PullResult {
  digest: Digest;
  tag: string;
  /** Why the image got a new digest, when it did. */
  note?: string;
}

class Client {
  constructor(readonly ref: RegistryRef, private f: RegistryFetch) {}

  url(path: string): string {
    return `${this.ref.base}/v2/${this.ref.repo}/${path}`;
  }

  async req(method: string, url: string, what: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Res> {
    try {
      return await this.f(url, { method, ...init });
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw new LayerboxError(`${what}: cannot reach ${this.ref.base}: ${cause ?? (e as Error).message}`);
    }
  }

  async fail(res: Res, what: string): Promise<never> {
    let detail = '';
    try {
      const doc = JSON.parse(await res.text());
      const e = doc?.errors?.[0];
      if (e) detail = `: ${e.code ?? ''}${e.message ? ` ${e.message}` : ''}`.trimEnd();
    } catch {
      /* no error document */
    }
    throw new LayerboxError(`${what}: HTTP ${res.status}${detail}`);
  }
}

const hex = (d: Digest) => d.slice(7);

/**
 * Pushes an image: its OCI form (exportOci with layerbox annotations, so a
 * pull keeps the image digest), each blob unless the registry has it, then
 * the manifest by tag.
 */
export async function pushImage(store: Store, image: string, ref: string, opts: PushOptions): Promise<PushResult> {
  const r = parseRegistryRef(ref);
  const c = new Client(r, opts.fetch ?? (fetch as unknown as RegistryFetch));
  const entries = await exportOci(store, [image], { format: 'oci', gzip: opts.gzip, layerboxAnnotations: true });
  const files = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e.data!]));
  const blob = (d: Digest) => files.get(`blobs/sha256/${hex(d)}`)!;
  const index = parseJson(files.get('index.json')!, 'index.json');
  const mdigest: Digest = index.manifests[0].digest;
  const manifestBytes = blob(mdigest);
  const manifest = parseJson(manifestBytes, 'manifest');
  const out: PushResult = { manifest: mdigest, uploaded: 0, skipped: 0, layersUploaded: 0, layersSkipped: 0 };
  const todo: Array<{ digest: Digest; layer: boolean }> = [{ digest: manifest.config.digest, layer: false }, ...manifest.layers.map((l: { digest: Digest }) => ({ digest: l.digest, layer: true }))];
  for (const { digest, layer } of todo) {
    const what = `push ${ref}: blob ${digest}`;
    const head = await c.req('HEAD', c.url(`blobs/${digest}`), what);
    if (head.ok) {
      out.skipped++;
      if (layer) out.layersSkipped++;
      continue;
    }
    if (head.status !== 404) await c.fail(head, what);
    opts.onProgress?.(`uploading ${digest}`);
    const start = await c.req('POST', c.url('blobs/uploads/'), what);
    if (start.status !== 202) await c.fail(start, `${what}: starting the upload`);
    const loc = start.headers.get('location');
    if (!loc) throw new LayerboxError(`${what}: the registry gave no upload location`);
    const u = /^https?:\/\//.test(loc) ? loc : `${r.base}${loc.startsWith('/') ? '' : '/'}${loc}`;
    const put = await c.req('PUT', `${u}${u.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`, what, {
      headers: { 'Content-Type': 'application/octet-stream' },
      body: blob(digest),
    });
    if (put.status !== 201) await c.fail(put, what);
    out.uploaded++;
    if (layer) out.layersUploaded++;
  }
  const what = `push ${ref}: manifest`;
  const res = await c.req('PUT', c.url(`manifests/${r.tag}`), what, { headers: { 'Content-Type': MEDIA.manifest }, body: manifestBytes });
  if (res.status !== 201) await c.fail(res, what);
  return out;
}

const ACCEPT = [MEDIA.manifest, MEDIA.dockerManifest, MEDIA.index, MEDIA.dockerList].join(', ');

/**
 * Pulls `host/repo:tag`: the manifest by tag, then config and layers (every
 * blob checked against its digest, every layer against its diff_id, before
 * anything is stored), imported like an OCI layout and tagged `repo:tag` (or
 * `opts.tag`). An image pushed by layerbox keeps its digest when its layers
 * rebuild exactly; otherwise `note` says why it did not.
 */
export async function pullImage(store: Store, ref: string, opts: PullOptions): Promise<PullResult> {
  const r = parseRegistryRef(ref);
  const c = new Client(r, opts.fetch ?? (fetch as unknown as RegistryFetch));
  const tag = parseTag(opts.tag ?? `${r.repo}:${r.tag}`);
  const what = `pull ${ref}`;
  const res = await c.req('GET', c.url(`manifests/${r.tag}`), what, { headers: { Accept: ACCEPT } });
  if (res.status === 404) throw new LayerboxError(`${what}: no such image or tag (${r.repo}:${r.tag} is not in ${r.host})`);
  if (!res.ok) await c.fail(res, what);
  const mbytes = new Uint8Array(await res.arrayBuffer());
  const mdigest = store.digest(mbytes);
  const said = res.headers.get('docker-content-digest');
  if (said && isDigest(said) && said !== mdigest) throw new LayerboxError(`${what}: manifest hashes to ${mdigest}, the registry says ${said}`);
  const doc = parseJson(mbytes, `${what}: manifest`);
  const mediaType = typeof doc?.mediaType === 'string' ? doc.mediaType : (res.headers.get('content-type') ?? MEDIA.manifest).split(';')[0]!.trim();
  const cache = new Map<string, Uint8Array>([[hex(mdigest), mbytes]]);
  const getBlob = async (h: string): Promise<Uint8Array | null> => {
    const hit = cache.get(h);
    if (hit) return hit;
    const d = `sha256:${h}`;
    let b = await c.req('GET', c.url(`blobs/${d}`), `${what}: blob ${d}`);
    // Manifests named by an index live under manifests/.
    if (b.status === 404) b = await c.req('GET', c.url(`manifests/${d}`), `${what}: blob ${d}`, { headers: { Accept: ACCEPT } });
    if (b.status === 404) return null;
    if (!b.ok) await c.fail(b, `${what}: blob ${d}`);
    return new Uint8Array(await b.arrayBuffer());
  };
  const index = ociIndexJson([{ mediaType, digest: mdigest, size: mbytes.length }]);
  const read = async (path: string): Promise<Uint8Array | null> => {
    if (path === 'oci-layout') return OCI_LAYOUT;
    if (path === 'index.json') return index;
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path);
    return m ? getBlob(m[1]!) : null;
  };
  let done;
  try {
    done = await importOci(store, read, { tag, gunzip: opts.gunzip });
  } catch (e) {
    if (e instanceof LayerboxError) throw new LayerboxError(`${what}: ${e.message.replace(/ is missing from the archive$/, ' is missing from the registry')}`, { errno: e.errno, cause: e });
    throw e;
  }
  const img = done[0]!;
  return { digest: img.digest, tag, ...(img.note ? { note: img.note } : {}) };
}
