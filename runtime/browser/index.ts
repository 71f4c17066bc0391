/**
 * layerbox for browsers: the same surface as the Node entry.
 * `openStore('memory:' | 'idb:NAME' | 'https://host/store', { remote })`.
 * Guests run in a Web Worker when the page is cross-origin isolated
 * (SharedArrayBuffer available): output streams back, a timeout stops them.
 */
import { type Backend, type Digest, FallbackBackend, HttpBackend, type ImportOptions, LayerboxError, MemoryBackend, Store, type StoreOptions } from '../../src/index.js';
import { openIdbBackend } from './idb-backend.js';
import { installWorkerRunner } from './runner.js';

export * from '../../src/index.js';
export { IdbBackend, openIdbBackend } from './idb-backend.js';
export { installWorkerRunner, defaultWorkerUrl } from './runner.js';

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A store with the browser's imports. */
export class BrowserStore extends Store {
  /** Imports a tar (plain or gzip, as bytes or a Blob/File) as a one-layer image. */
  async importTar(tar: Uint8Array | Blob, opts: ImportOptions = {}): Promise<Digest> {
    let bytes = tar instanceof Uint8Array ? tar : new Uint8Array(await tar.arrayBuffer());
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes);
    return this.importTarBytes(bytes, opts);
  }
}

export interface BrowserStoreOptions extends StoreOptions {
  /** A read-only HTTP store behind this one: its images are usable, their data fetched on demand. */
  remote?: string;
  /** Bytes of blobs an IndexedDB store keeps in memory for synchronous reads (default 64 MiB). */
  cacheBytes?: number;
  /** URL of dist/browser-worker.js when it is not next to this module. */
  workerUrl?: URL | string;
}

/** Opens a store: `memory:`, `idb:NAME` (IndexedDB, survives reloads) or an http(s) URL of a served directory store (read-only). */
export async function openStore(target: string, opts: BrowserStoreOptions = {}): Promise<BrowserStore> {
  let backend: Backend;
  if (target === 'memory:') backend = new MemoryBackend(opts.hasher);
  else if (target.startsWith('idb:') && target.length > 4) backend = await openIdbBackend(target.slice(4), { cacheBytes: opts.cacheBytes });
  else if (/^https?:\/\//.test(target) || target.startsWith('/')) backend = await HttpBackend.open(new URL(target, globalThis.location?.href).href);
  else throw new LayerboxError(`unsupported store target: ${target} (use memory:, idb:NAME or an http(s) URL)`, { code: 'INVALID' });
  if (opts.remote) backend = new FallbackBackend(backend, await HttpBackend.open(new URL(opts.remote, globalThis.location?.href).href));
  const store = new BrowserStore(backend, opts);
  installWorkerRunner(store, opts.workerUrl);
  return store;
}
