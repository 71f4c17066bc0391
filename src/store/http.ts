import { type Digest, digestFromBytes, toHex } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { fromUtf8 } from '../text.js';
import { type Backend, type BackendStats, type BlobProblem, type RefsDoc, checkRefs } from './backend.js';

type Fetch = (url: string, init?: { headers?: Record<string, string> }) => Promise<LayerboxFetchResponse>;

interface Loc {
  pack: string;
  offset: number;
  length: number;
}

/**
 * A directory store served over HTTP, read-only and lazy: opening it reads
 * the pack list and each pack's index with range requests; a blob is one
 * range request, verified against its digest. Nothing else is fetched.
 */
export class HttpBackend implements Backend {
  readonly kind = 'http';
  /** Bytes received, for tests and progress. */
  bytesFetched = 0;
  private index = new Map<Digest, Loc>();
  private refs: RefsDoc = { tags: {}, boxes: {} };

  private constructor(readonly location: string, private fetchFn: Fetch) {}

  static async open(url: string, fetchFn: Fetch = (u, i) => fetch(u, i)): Promise<HttpBackend> {
    const b = new HttpBackend(url.replace(/\/+$/, ''), fetchFn);
    await b.load();
    return b;
  }

  private async get(path: string, range?: string): Promise<Uint8Array> {
    const url = `${this.location}/${path}`;
    let r: LayerboxFetchResponse;
    try {
      r = await this.fetchFn(url, range ? { headers: { Range: `bytes=${range}` } } : undefined);
    } catch (e) {
      throw new LayerboxError(`cannot fetch ${url}: ${(e as Error).message}`, { code: 'UNAVAILABLE' });
    }
    if (!r.ok) throw new LayerboxError(`cannot fetch ${url}: HTTP ${r.status}`, { code: r.status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE' });
    if (range && r.status !== 206) throw new LayerboxError(`${url} does not answer range requests (HTTP ${r.status})`, { code: 'UNSUPPORTED' });
    const bytes = new Uint8Array(await r.arrayBuffer());
    this.bytesFetched += bytes.length;
    return bytes;
  }

  private async json(path: string, magic: string): Promise<any> {
    let doc: any;
    try {
      doc = JSON.parse(fromUtf8(await this.get(path)));
    } catch (e) {
      if (e instanceof LayerboxError) throw e;
      throw new LayerboxError(`${this.location}/${path}: not JSON`, { code: 'CORRUPT' });
    }
    if (doc?.magic !== magic) throw new LayerboxError(`${this.location}/${path}: not a ${magic} document`, { code: 'CORRUPT' });
    if (doc.version !== 1) throw new LayerboxError(`${this.location}/${path}: unsupported version ${doc.version}`, { code: 'INVALID' });
    return doc;
  }

  private async load(): Promise<void> {
    await this.json('layerbox-store.json', 'layerbox-store');
    const refs = await this.json('refs.json', 'layerbox-refs');
    this.refs = checkRefs({ tags: refs.tags ?? {}, boxes: refs.boxes ?? {} }, `${this.location}/refs.json`);
    const list = await this.json('packs.json', 'layerbox-packs');
    if (!Array.isArray(list.packs)) throw new LayerboxError(`${this.location}/packs.json: packs is not a list`, { code: 'CORRUPT' });
    for (const name of list.packs as unknown[]) {
      if (typeof name !== 'string') throw new LayerboxError(`bad pack name in packs.json: ${JSON.stringify(name)}`, { code: 'CORRUPT' });
      if (!/^[0-9a-f]{64}\.pack$/.test(name)) throw new LayerboxError(`bad pack name in packs.json: ${name}`, { code: 'CORRUPT' });
      const foot = await this.get(`packs/${name}`, '-16');
      const view = new DataView(foot.buffer, foot.byteOffset, 16);
      const magic = fromUtf8(foot.subarray(8));
      if (magic !== 'LBXPIDX\0' && magic !== 'LBXPIDS\0') throw new LayerboxError(`packs/${name}: bad footer (not a layerbox pack)`, { code: 'CORRUPT' });
      const indexOffset = Number(view.getBigUint64(0, true));
      const idx = await this.get(`packs/${name}`, `${indexOffset}-`);
      const body = idx.subarray(0, idx.length - 16);
      const iv = new DataView(body.buffer, body.byteOffset, body.length);
      const count = iv.getUint32(0, true);
      if (4 + count * 48 !== body.length) throw new LayerboxError(`packs/${name}: index size does not match its count`, { code: 'CORRUPT' });
      for (let i = 0; i < count; i++) {
        const p = 4 + i * 48;
        this.index.set(digestFromBytes(body.subarray(p, p + 32)), { pack: name, offset: Number(iv.getBigUint64(p + 32, true)), length: Number(iv.getBigUint64(p + 40, true)) });
      }
    }
  }

  hasBlob(digest: Digest): boolean {
    return this.index.has(digest);
  }

  async getBlob(digest: Digest): Promise<Uint8Array> {
    const loc = this.index.get(digest);
    if (!loc) throw new LayerboxError(`blob ${digest} is missing from ${this.location}`, { code: 'NOT_FOUND' });
    const bytes = loc.length ? await this.get(`packs/${loc.pack}`, `${loc.offset}-${loc.offset + loc.length - 1}`) : new Uint8Array();
    const actual = `sha256:${toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)))}`;
    if (actual !== digest) throw new LayerboxError(`blob ${digest} is corrupt: its content does not match its digest (from ${this.location})`, { code: 'CORRUPT' });
    return bytes;
  }

  /** Blobs fetched by `preload`, so synchronous readers (the page's box.fs) can use them; bounded, oldest out. */
  private cache = new Map<Digest, Uint8Array>();
  private cached = 0;

  async preload(digests: Digest[]): Promise<void> {
    for (const d of digests) {
      if (this.cache.has(d)) continue;
      const b = await this.getBlob(d);
      this.cache.set(d, b);
      this.cached += b.length;
      for (const [k, v] of this.cache) {
        if (this.cached <= 64 * 1024 * 1024) break;
        this.cache.delete(k);
        this.cached -= v.length;
      }
    }
  }

  readBlobSync(digest: Digest): Uint8Array {
    const hit = this.cache.get(digest);
    if (hit) return hit;
    throw new LayerboxError(`blob ${digest} of ${this.location} is not loaded: read it with box.readFile (or preload it) first`, { code: 'INVALID' });
  }

  async readRefs(): Promise<RefsDoc> {
    return JSON.parse(JSON.stringify(this.refs)) as RefsDoc;
  }

  private readOnly(): never {
    throw new LayerboxError(`${this.location} is a read-only store`, { code: 'UNSUPPORTED' });
  }
  lock<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  async putBlobs(): Promise<void> {
    this.readOnly();
  }
  async writeRefs(): Promise<void> {
    this.readOnly();
  }
  async listBlobs(): Promise<Array<{ digest: Digest; size: number }>> {
    return [...this.index].map(([digest, l]) => ({ digest, size: l.length }));
  }
  async deleteBlobs(): Promise<{ blobs: number; bytes: number }> {
    return this.readOnly();
  }
  async verify(): Promise<BlobProblem[]> {
    const out: BlobProblem[] = [];
    for (const d of this.index.keys()) {
      try {
        await this.getBlob(d);
      } catch (e) {
        out.push({ digest: d, where: this.location, problem: (e as Error).message });
      }
    }
    return out;
  }
  async stats(): Promise<BackendStats> {
    let bytes = 0;
    for (const l of this.index.values()) bytes += l.length;
    return { blobs: this.index.size, bytes };
  }
  async close(): Promise<void> {}
}
