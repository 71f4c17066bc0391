// Push and pull images to an OCI distribution registry over HTTP(S), with the
// host's fetch (Node 20 and browsers): no Node APIs, so the browser entry can pull.
import { type Digest, isDigest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { parseTag } from '../image.js';
import type { Store } from '../store/store.js';
import { encodeImage } from '../image.js';
import { fromUtf8 } from '../text.js';
import { type Descriptor, LAYERBOX_IMAGE, LAYERBOX_LAYER, MEDIA, OCI_LAYOUT, imageConfigJson, ociIndexJson, ociManifestJson, parseJson } from './format.js';
import { type ArchiveReader, type ArchiveStreams, importOci } from './import.js';
import { layerTarEntries } from './layer.js';
import { tarPieces } from '../tar.js';
import { type ArchiveMember, type ByteStream, MAX_DOCUMENT, MiB, type StreamHasher, defaultStreamHasher, readCapped, verifying } from './stream.js';

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
    throw new LayerboxError(`invalid registry reference ${JSON.stringify(ref)}: use HOST[:PORT]/REPO[:TAG], e.g. 127.0.0.1:5000/demo:v1`, { code: 'INVALID' });
  const nt = parseTag(ref.slice(slash + 1));
  const i = nt.lastIndexOf(':');
  const hostname = host.replace(/:\d+$/, '');
  const plain = hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
  return { host, repo: nt.slice(0, i), tag: nt.slice(i + 1), base: `${plain ? 'http' : 'https'}://${host}` };
}

/** A registry response: status, headers and the body as a stream of pieces. */
export interface RegistryResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: ByteStream | LayerboxReadableStream<Uint8Array> | null;
}

export interface RegistryRequest {
  method: string;
  headers?: Record<string, string>;
  /** Bytes, or a stream of known size (sent with that Content-Length). */
  body?: Uint8Array | { size: number; stream(): ByteStream };
  /** Aborts the request and its body (a timeout). */
  signal: AbortSignal;
  /** Called once the connection is up, when the host can tell. */
  onConnect?: () => void;
  /** Follow redirects itself (browsers) or hand 3xx back (Node's http). */
  redirect: 'manual';
}

/** How requests go out: the host's http client. The default wraps the global fetch. */
export type RegistryFetch = (url: string, init: RegistryRequest) => Promise<RegistryResponse>;

/** Keeps a large blob out of memory while it downloads or uploads: a temp file on Node. */
export interface Spool {
  write(piece: Uint8Array): Promise<void>;
  /** Ends writing; the bytes written, re-readable. */
  close(): Promise<ArchiveMember & { size: number }>;
  /** Removes it (after close, or instead). */
  remove(): Promise<void>;
}
export type SpoolFactory = () => Promise<Spool>;

/** Keeps the pieces in memory: the portable default. */
export const memorySpool: SpoolFactory = async () => {
  let parts: Uint8Array[] = [];
  let size = 0;
  return {
    async write(p) {
      parts.push(p.slice());
      size += p.length;
    },
    async close() {
      const held = parts;
      return { size, stream: () => (async function* () { yield* held; })() };
    },
    async remove() {
      parts = [];
    },
  };
};

export interface NetOptions {
  fetch?: RegistryFetch;
  /** Seconds to get a connection (default 30). */
  connectTimeout?: number;
  /** Seconds without a byte from the registry while waiting for a response or reading one (default 60). */
  idleTimeout?: number;
  /** Incremental sha256 (default: pure JS). */
  hash?: StreamHasher;
  /** Where blobs wait between the network and the store (default: memory). */
  spool?: SpoolFactory;
}

export interface PushOptions extends NetOptions {
  /** Deterministic streaming gzip for the layers (the host's zlib). */
  gzip: (tar: ByteStream) => ByteStream;
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

export interface PullOptions extends NetOptions {
  /** The host's gunzip, for small layers read whole. */
  gunzip: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /** The host's streaming gunzip, for layers streamed from their spool. */
  gunzipStream?: (src: ByteStream) => ByteStream;
  /** Tag for the image instead of the reference's `repo:tag`. */
  tag?: string;
}

export interface PullResult {
  digest: Digest;
  tag: string;
  /** Why the image got a new digest, when it did. */
  note?: string;
}

/** Redirects followed per request (registries send blob reads to a CDN: one or two). */
const MAX_REDIRECTS = 5;

type LooseFetch = (url: string, init: Record<string, unknown>) => Promise<{ status: number; headers: { get(name: string): string | null }; body: LayerboxReadableStream<Uint8Array> | null }>;

/**
 * The global fetch as a RegistryFetch. It cannot tell when it connects, so
 * the idle timeout covers connecting too; it follows redirects itself (at
 * most 20, by the fetch standard).
 */
export function fetchAdapter(fetchFn?: unknown): RegistryFetch {
  const f = (fetchFn ?? fetch) as LooseFetch;
  return async (url, init) => {
    init.onConnect?.();
    const body = init.body === undefined ? undefined : init.body instanceof Uint8Array ? init.body : toReadable(init.body.stream());
    const res = await f(url, {
      method: init.method,
      headers: { ...init.headers, ...(init.body && !(init.body instanceof Uint8Array) ? { 'Content-Length': String(init.body.size) } : {}) },
      body,
      signal: init.signal,
      ...(body && !(body instanceof Uint8Array) ? { duplex: 'half' } : {}),
    });
    return { status: res.status, headers: res.headers, body: res.body };
  };
}

function toReadable(src: ByteStream): LayerboxReadableStream<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const r = await it.next();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

function iterate(body: ByteStream | LayerboxReadableStream<Uint8Array>): AsyncIterator<Uint8Array> {
  if (Symbol.asyncIterator in body) return (body as ByteStream)[Symbol.asyncIterator]();
  const reader = (body as LayerboxReadableStream<Uint8Array>).getReader();
  return {
    next: () => reader.read() as Promise<IteratorResult<Uint8Array>>,
    return: async () => {
      await reader.cancel().catch(() => {});
      return { done: true, value: undefined };
    },
  };
}

const errMessage = (e: unknown): string => {
  const cause = (e as { cause?: { message?: string; code?: string } })?.cause;
  return cause?.message ?? (e as Error)?.message ?? String(e);
};

/** A response whose body is read under the idle timeout; every way it can fail is one LayerboxError. */
interface Got {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  /** The body as pieces; `expected` bytes (or the Content-Length) are due, else the connection was cut. */
  stream(what: string, expected?: number): ByteStream;
  /** The body in memory, at most `max` bytes. */
  bytes(what: string, max: number): Promise<Uint8Array>;
  /** Drops the body. */
  discard(): Promise<void>;
}

class Client {
  readonly connectMs: number;
  readonly idleMs: number;
  readonly hash: StreamHasher;
  readonly spool: SpoolFactory;
  private f: RegistryFetch;

  constructor(readonly ref: RegistryRef, opts: NetOptions) {
    this.f = opts.fetch ?? fetchAdapter();
    this.connectMs = seconds(opts.connectTimeout, 30, 'connect timeout') * 1000;
    this.idleMs = seconds(opts.idleTimeout, 60, 'idle timeout') * 1000;
    this.hash = opts.hash ?? defaultStreamHasher;
    this.spool = opts.spool ?? memorySpool;
  }

  url(path: string): string {
    return `${this.ref.base}/v2/${this.ref.repo}/${path}`;
  }

  /**
   * One request, redirects followed (at most MAX_REDIRECTS, to http(s) only),
   * the connect and idle timeouts armed: a registry that accepts the
   * connection and then says nothing fails after the idle timeout.
   */
  async req(method: string, url: string, what: string, init: { headers?: Record<string, string>; body?: RegistryRequest['body'] } = {}): Promise<Got> {
    for (let hops = 0; ; hops++) {
      const host = hostOf(url);
      const ac = new AbortController();
      let timer: ReturnType<typeof setTimeout> | undefined;
      let why: LayerboxError | null = null;
      const arm = (ms: number, e: () => LayerboxError) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          why = e();
          ac.abort(why);
        }, ms);
      };
      const idle = () => new LayerboxError(`${what}: no data from ${host} for ${this.idleMs / 1000} s (idle timeout)`, { code: 'TIMEOUT' });
      // The connect timeout runs until the host says it connected; then the idle timeout.
      arm(this.connectMs, () => new LayerboxError(`${what}: cannot connect to ${host} within ${this.connectMs / 1000} s (connect timeout)`, { code: 'TIMEOUT' }));
      let connected = false;
      const onConnect = () => {
        if (connected) return;
        connected = true;
        arm(this.idleMs, idle);
      };
      let res: RegistryResponse;
      try {
        res = await this.f(url, { method, ...init, signal: ac.signal, onConnect, redirect: 'manual' });
      } catch (e) {
        clearTimeout(timer);
        if (why) throw why;
        if (e instanceof LayerboxError) throw e;
        throw new LayerboxError(`${what}: cannot reach ${host}: ${errMessage(e)}`, { code: 'UNAVAILABLE' });
      }
      const loc = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && res.status !== 304 && loc) {
        clearTimeout(timer);
        await this.close(res);
        if (hops >= MAX_REDIRECTS) throw new LayerboxError(`${what}: more than ${MAX_REDIRECTS} redirects`, { code: 'UNAVAILABLE' });
        const next = new URL(loc, url);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new LayerboxError(`${what}: refusing a redirect to ${next.protocol}`, { code: 'UNAVAILABLE' });
        if (next.protocol === 'http:' && new URL(url).protocol === 'https:') throw new LayerboxError(`${what}: refusing a redirect from https to http (${next.host})`, { code: 'UNAVAILABLE' });
        // A redirect does not resend a body (registries redirect reads, not uploads).
        if (init.body !== undefined) throw new LayerboxError(`${what}: the registry redirected an upload`, { code: 'UNAVAILABLE' });
        url = next.href;
        continue;
      }
      clearTimeout(timer);
      return this.got(res, host, ac, (ms) => arm(ms, idle), () => clearTimeout(timer), () => why);
    }
  }

  private async close(res: RegistryResponse): Promise<void> {
    if (res.body) await iterate(res.body).return?.();
  }

  private got(res: RegistryResponse, host: string, ac: AbortController, arm: (ms: number) => void, disarm: () => void, why: () => LayerboxError | null): Got {
    const idleMs = this.idleMs;
    const length = Number(res.headers.get('content-length') ?? NaN);
    let used = false;
    const stream = (what: string, expected?: number): ByteStream => {
      if (used) throw new Error('response body read twice');
      used = true;
      const due = expected ?? (Number.isSafeInteger(length) ? length : undefined);
      return (async function* () {
        if (!res.body) {
          if (due) throw new LayerboxError(`${what}: ${host} sent no body`, { code: 'UNAVAILABLE' });
          return;
        }
        const it = iterate(res.body);
        let n = 0;
        const cut = (e?: unknown) =>
          why() ?? (e instanceof LayerboxError ? e : new LayerboxError(`connection to ${host} closed while reading ${what} (${MiB(n)}${due !== undefined ? ` of ${MiB(due)}` : ''})`, { code: 'UNAVAILABLE' }));
        try {
          for (;;) {
            arm(idleMs);
            let r: IteratorResult<Uint8Array>;
            try {
              r = await it.next();
            } catch (e) {
              throw cut(e);
            }
            disarm();
            if (r.done) break;
            n += r.value.length;
            yield r.value;
          }
          if (due !== undefined && n < due) throw cut();
        } finally {
          disarm();
          if (!ac.signal.aborted) await it.return?.().catch(() => undefined);
        }
      })();
    };
    return {
      status: res.status,
      ok: res.status >= 200 && res.status < 300,
      headers: res.headers,
      stream,
      async bytes(what, max) {
        if (Number.isSafeInteger(length) && length > max) {
          ac.abort();
          throw new LayerboxError(`${what} is larger than ${MiB(max)} (${MiB(length)}); refusing it`, { code: 'UNSUPPORTED' });
        }
        try {
          return await readCapped(stream(what), max, what);
        } catch (e) {
          ac.abort();
          throw e;
        }
      },
      async discard() {
        if (used) return;
        used = true;
        if (res.body) await iterate(res.body).return?.().catch(() => undefined);
      },
    };
  }

  async fail(res: Got, what: string): Promise<never> {
    let detail = '';
    try {
      const doc = JSON.parse(new TextDecoder().decode(await res.bytes(`${what}: error document`, 64 << 10)));
      const e = doc?.errors?.[0];
      if (e) detail = `: ${e.code ?? ''}${e.message ? ` ${e.message}` : ''}`.trimEnd();
    } catch {
      /* no error document */
    }
    // 404 is an answer (no such repository, tag or blob); any other status is the registry refusing to serve.
    throw new LayerboxError(`${what}: HTTP ${res.status}${detail}`.replace(/[\r\n]+/g, ' '), { code: res.status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE' });
  }

  /**
   * Streams a blob into a spool while hashing it; the spool only when the
   * digest and size match (`size` from the descriptor, when known).
   */
  async download(res: Got, digest: Digest, size: number | undefined, what: string): Promise<ArchiveMember & { size: number; remove(): Promise<void> }> {
    const sp = await this.spool();
    try {
      const v = verifying(res.stream(`blob ${digest}`, size), this.hash, { digest, size }, what);
      for await (const p of v.stream) await sp.write(p);
      v.check();
      return Object.assign(await sp.close(), { remove: () => sp.remove() });
    } catch (e) {
      await sp.remove();
      throw e;
    }
  }
}

function seconds(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!(v > 0) || !Number.isFinite(v)) throw new LayerboxError(`${what} must be a positive number of seconds, got ${v}`, { code: 'INVALID' });
  return v;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}


/**
 * Pushes an image: its OCI form (as exportOci makes it, with layerbox
 * annotations, so a pull keeps the image digest), each blob unless the
 * registry has it, then the manifest by tag. Each layer's tar is made, gzipped
 * and hashed as a stream into a spool, then uploaded from it: memory does not
 * grow with the image.
 */
export async function pushImage(store: Store, image: string, ref: string, opts: PushOptions): Promise<PushResult> {
  const r = parseRegistryRef(ref);
  const c = new Client(r, opts);
  const digest = await store.resolveImage(image);
  const m = await store.manifest(digest);
  const lowers = await store.mountImage(m);
  const out: PushResult = { manifest: digest, uploaded: 0, skipped: 0, layersUploaded: 0, layersSkipped: 0 };
  const upload = async (d: Digest, body: NonNullable<RegistryRequest['body']>, layer: boolean): Promise<void> => {
    const what = `push ${ref}: blob ${d}`;
    const head = await c.req('HEAD', c.url(`blobs/${d}`), what);
    await head.discard();
    if (head.ok) {
      out.skipped++;
      if (layer) out.layersSkipped++;
      return;
    }
    if (head.status !== 404) await c.fail(head, what);
    opts.onProgress?.(`uploading ${d}`);
    const start = await c.req('POST', c.url('blobs/uploads/'), what);
    if (start.status !== 202) await c.fail(start, `${what}: starting the upload`);
    await start.discard();
    const loc = start.headers.get('location');
    if (!loc) throw new LayerboxError(`${what}: the registry gave no upload location`, { code: 'UNAVAILABLE' });
    const u = new URL(loc, `${r.base}/`).href;
    const put = await c.req('PUT', `${u}${u.includes('?') ? '&' : '?'}digest=${encodeURIComponent(d)}`, what, {
      headers: { 'Content-Type': 'application/octet-stream' },
      body,
    });
    if (put.status !== 201) await c.fail(put, what);
    await put.discard();
    out.uploaded++;
    if (layer) out.layersUploaded++;
  };
  const descs: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (let i = 0; i < lowers.length; i++) {
    const sp = await c.spool();
    try {
      const th = c.hash(), gh = c.hash();
      const tar = (async function* () {
        for (const p of tarPieces(layerTarEntries(lowers, i, store.overlayOptions(), `layer ${i + 1} (${m.layers[i]!.digest}) of ${image}`))) {
          th.update(p);
          yield p;
        }
      })();
      for await (const p of opts.gzip(tar)) {
        gh.update(p);
        await sp.write(p);
      }
      const blob = await sp.close();
      const d = gh.digest();
      diffIds.push(th.digest());
      descs.push({ mediaType: MEDIA.layerGzip, digest: d, size: blob.size, annotations: { [LAYERBOX_LAYER]: m.layers[i]!.digest } });
      await upload(d, blob, true);
    } finally {
      await sp.remove();
    }
  }
  const config = imageConfigJson(m, diffIds);
  const configDigest = store.digest(config);
  await upload(configDigest, config, false);
  const manifestBytes = ociManifestJson({ mediaType: MEDIA.config, digest: configDigest, size: config.length }, descs, { [LAYERBOX_IMAGE]: fromUtf8(encodeImage(m)) });
  out.manifest = store.digest(manifestBytes);
  const what = `push ${ref}: manifest`;
  const res = await c.req('PUT', c.url(`manifests/${r.tag}`), what, { headers: { 'Content-Type': MEDIA.manifest }, body: manifestBytes });
  if (res.status !== 201) await c.fail(res, what);
  await res.discard();
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
  const c = new Client(r, opts);
  const tag = parseTag(opts.tag ?? `${r.repo}:${r.tag}`);
  const what = `pull ${ref}`;
  const res = await c.req('GET', c.url(`manifests/${r.tag}`), what, { headers: { Accept: ACCEPT } });
  if (res.status === 404) {
    await res.discard();
    throw new LayerboxError(`${what}: no such image or tag (${r.repo}:${r.tag} is not in ${r.host})`, { code: 'NOT_FOUND' });
  }
  if (!res.ok) await c.fail(res, what);
  const mbytes = await res.bytes(`${what}: manifest`, MAX_DOCUMENT);
  const mdigest = store.digest(mbytes);
  const said = res.headers.get('docker-content-digest');
  if (said && isDigest(said) && said !== mdigest) throw new LayerboxError(`${what}: manifest hashes to ${mdigest}, the registry says ${said}`, { code: 'CORRUPT' });
  const doc = parseJson(mbytes, `${what}: manifest`);
  const mediaType = typeof doc?.mediaType === 'string' ? doc.mediaType : (res.headers.get('content-type') ?? MEDIA.manifest).split(';')[0]!.trim();
  /** Descriptor sizes the manifest gives, so a blob longer than its own is cut off early. */
  const sizes = new Map<string, number>();
  for (const d of [doc?.config, ...(Array.isArray(doc?.layers) ? doc.layers : [])]) if (d && isDigest(d.digest) && Number.isSafeInteger(d.size)) sizes.set(d.digest, d.size);
  const get = async (d: Digest, accept: boolean): Promise<Got | null> => {
    const bw = `${what}: blob ${d}`;
    let b = await c.req('GET', c.url(`blobs/${d}`), bw);
    // Manifests named by an index live under manifests/.
    if (b.status === 404 && accept) {
      await b.discard();
      b = await c.req('GET', c.url(`manifests/${d}`), bw, { headers: { Accept: ACCEPT } });
    }
    if (b.status === 404) {
      await b.discard();
      return null;
    }
    if (!b.ok) await c.fail(b, bw);
    return b;
  };
  const index = ociIndexJson([{ mediaType, digest: mdigest, size: mbytes.length }]);
  const blobPath = (path: string): Digest | null => {
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path);
    return m ? `sha256:${m[1]!}` : null;
  };
  /** Documents (manifests, configs) in memory, read with a cap. */
  const read: ArchiveReader = async (path) => {
    if (path === 'oci-layout') return OCI_LAYOUT;
    if (path === 'index.json') return index;
    const d = blobPath(path);
    if (!d) return null;
    if (d === mdigest) return mbytes;
    const b = await get(d, true);
    return b && b.bytes(`${what}: blob ${d}`, MAX_DOCUMENT);
  };
  /** Layers streamed to a spool while hashed, checked there, then read from it. */
  const spooled = new Map<string, Promise<(ArchiveMember & { size: number; remove(): Promise<void> }) | null>>();
  const spool = (path: string) => {
    let p = spooled.get(path);
    if (!p) {
      const d = blobPath(path);
      p = d ? get(d, false).then((b) => b && c.download(b, d, sizes.get(d), what)) : Promise.resolve(null);
      spooled.set(path, p);
    }
    return p;
  };
  const streams: ArchiveStreams = {
    size: async (path) => (await spool(path))?.size ?? null,
    stream: (path) => (async function* () {
      const m = await spool(path);
      if (!m) throw new LayerboxError(`${path} is missing from the registry`, { code: 'NOT_FOUND' });
      yield* m.stream();
    })(),
  };
  let done;
  try {
    done = await importOci(store, read, { tag, gunzip: opts.gunzip, gunzipStream: opts.gunzipStream, streams, hasher: c.hash });
  } catch (e) {
    if (e instanceof LayerboxError) throw new LayerboxError(`${e.message.startsWith('connection to ') || e.message.startsWith(what) ? '' : `${what}: `}${e.message.replace(/ is missing from the archive$/, ' is missing from the registry')}`, { code: / is missing from the archive$/.test(e.message) ? 'NOT_FOUND' : e.code, errno: e.errno, cause: e });
    throw e;
  } finally {
    for (const p of spooled.values()) await (await p.catch(() => null))?.remove();
  }
  const img = done[0]!;
  return { digest: img.digest, tag, ...(img.note ? { note: img.note } : {}) };
}
