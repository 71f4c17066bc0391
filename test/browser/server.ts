/**
 * A tiny static file server for browser tests: the repository root on
 * 127.0.0.1 at a random port, cross-origin isolated (COOP/COEP/CORP on every
 * response, so pages get SharedArrayBuffer), with single-range requests and a
 * per-path count of body bytes sent, so tests can prove how much of a file a
 * page really fetched.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

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

export type Range = { start: number; end: number } | 'unsatisfiable' | null;

/**
 * Parses a `Range` header against a file size. `null`: no usable range, serve
 * the whole file (absent header, another unit, several ranges, bad syntax —
 * RFC 9110 lets a server ignore those). An inclusive `{start, end}` or
 * `'unsatisfiable'` (416).
 */
export function parseRange(header: string | undefined, size: number): Range {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return null;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return null;
  if (a === '') {
    // Suffix: the last n bytes.
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  let end = b === '' ? size - 1 : Number(b);
  if (b !== '' && end < start) return null;
  if (start >= size) return 'unsatisfiable';
  if (end >= size) end = size - 1;
  return { start, end };
}

/** Starts the server on 127.0.0.1 at a port the OS picks. */
export async function startServer(root: string = REPO_ROOT): Promise<TestServer> {
  root = await realpath(resolve(root));
  const inside = (p: string): boolean => p === root || p.startsWith(root + sep);
  const sent = new Map<string, number>();
  const hits = new Map<string, number>();

  const fail = (res: ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { ...ISOLATION, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return fail(res, 405, 'method not allowed\n');
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return fail(res, 400, 'bad path\n');
    }
    if (path.includes('\0')) return fail(res, 400, 'bad path\n');
    const file = resolve(root, '.' + path);
    if (!inside(file)) return fail(res, 403, 'outside the root\n');
    hits.set(path, (hits.get(path) ?? 0) + 1);

    let size: number;
    let mtime: Date;
    try {
      // Symbolic links must not lead out of the root either.
      if (!inside(await realpath(file))) return fail(res, 403, 'outside the root\n');
      const st = await stat(file);
      if (!st.isFile()) return fail(res, 404, 'not a file\n');
      size = st.size;
      mtime = st.mtime;
    } catch {
      return fail(res, 404, 'not found\n');
    }

    const headers: Record<string, string | number> = {
      ...ISOLATION,
      'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-store',
      'Last-Modified': mtime.toUTCString(),
    };
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      return void res.end();
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    const length = end - start + 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    headers['Content-Length'] = length;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || length === 0) return void res.end();

    await new Promise<void>((done) => {
      const stream = createReadStream(file, { start, end });
      stream.on('data', (chunk) => sent.set(path, (sent.get(path) ?? 0) + chunk.length));
      stream.on('error', () => {
        res.destroy();
        done();
      });
      res.on('close', () => {
        stream.destroy();
        done();
      });
      stream.pipe(res);
    });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) fail(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  await new Promise<void>((ok, ko) => {
    server.once('error', ko);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  return {
    origin,
    root,
    url: (p) => origin + (p.startsWith('/') ? p : '/' + p),
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
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
