/**
 * The static file server for browser tests: the repository root on
 * 127.0.0.1 at a random port, cross-origin isolated (COOP/COEP/CORP on every
 * response, so pages get SharedArrayBuffer), with single-range requests and a
 * per-path count of body bytes sent, so tests can prove how much of a file a
 * page really fetched. The serving itself is runtime/node/static-server.ts
 * (shared with `layerbox playground`); this adds the counters.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStaticServer } from '../../runtime/node/static-server.js';

export { type Range, parseRange } from '../../runtime/node/static-server.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface TestServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly origin: string;
  readonly root: string;
  /** `origin + path`. */
  url(path: string): string;
  /** Body bytes sent so far for a URL path (e.g. `/test/wasi/build/files.wasm`), 0 if none. */
  bytesSent(path: string): number;
  /** Requests answered so far for a URL path. */
  requests(path: string): number;
  /** Forgets the counters: all of them, or one path's. */
  resetCounters(path?: string): void;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 at a port the OS picks. */
export async function startServer(root: string = REPO_ROOT): Promise<TestServer> {
  const sent = new Map<string, number>();
  const hits = new Map<string, number>();
  const s = await startStaticServer({
    root,
    port: 0,
    onRequest: (path) => hits.set(path, (hits.get(path) ?? 0) + 1),
    onBytes: (path, n) => sent.set(path, (sent.get(path) ?? 0) + n),
  });
  return {
    origin: s.origin,
    root: s.root,
    url: (p) => s.origin + (p.startsWith('/') ? p : '/' + p),
    bytesSent: (p) => sent.get(p) ?? 0,
    requests: (p) => hits.get(p) ?? 0,
    resetCounters: (p) => {
      if (p === undefined) {
        sent.clear();
        hits.clear();
      } else {
        sent.delete(p);
        hits.delete(p);
      }
    },
    close: () => s.close(),
  };
}
