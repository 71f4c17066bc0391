/**
 * A small static file server: one directory on 127.0.0.1, cross-origin
 * isolated (COOP/COEP/CORP on every response, so pages get
 * SharedArrayBuffer and layerbox runs guests in a worker), with single-range
 * requests. Used by `layerbox playground` and by the browser tests (which
 * count requests and body bytes through the hooks).
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { LayerboxError } from '../../src/errno.js';

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.lbx': 'application/octet-stream',
};

/** The headers that make a page cross-origin isolated; sent on every response. */
export const ISOLATION: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

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

export interface StaticServerOptions {
  /** The directory served as `/`. Nothing outside it is ever read, symbolic links included. */
  root: string;
  /** Port on 127.0.0.1; 0 (the default) lets the OS pick a free one. */
  port?: number;
  host?: string;
  /** `Cache-Control` of file responses (default `no-store`). */
  cacheControl?: string;
  /** Serve `DIR/index.html` for `DIR/`, and redirect `DIR` to `DIR/` (default false: directories are 404). */
  index?: boolean;
  /** Exact URL paths answered with a 302 to another path, e.g. `{ '/': '/playground/' }`. */
  redirects?: Readonly<Record<string, string>>;
  /** Called for every GET/HEAD inside the root, before the file is looked up (decoded URL path). */
  onRequest?: (path: string) => void;
  /** Called with each piece of body sent for a URL path. */
  onBytes?: (path: string, bytes: number) => void;
}

export interface StaticServer {
  readonly server: Server;
  readonly root: string;
  readonly port: number;
  /** `http://HOST:PORT` (no trailing slash). */
  readonly origin: string;
  close(): Promise<void>;
}

/** Starts serving `opts.root`. A taken port is a LayerboxError naming it. */
export async function startStaticServer(opts: StaticServerOptions): Promise<StaticServer> {
  const host = opts.host ?? '127.0.0.1';
  let root: string;
  try {
    root = await realpath(resolve(opts.root));
  } catch {
    throw new LayerboxError(`cannot serve ${opts.root}: no such directory`, { code: 'NOT_FOUND' });
  }
  const inside = (p: string): boolean => p === root || p.startsWith(root + sep);
  const cacheControl = opts.cacheControl ?? 'no-store';
  const redirects = opts.redirects ?? {};

  const fail = (res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void => {
    res.writeHead(status, { ...ISOLATION, ...extra, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(text);
  };

  const redirect = (res: ServerResponse, to: string, search: string): void => {
    res.writeHead(302, { ...ISOLATION, Location: to + search, 'Content-Length': 0, 'Cache-Control': 'no-store' });
    res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    let path: string;
    let search: string;
    try {
      const u = new URL(req.url ?? '/', 'http://x');
      path = decodeURIComponent(u.pathname);
      search = u.search;
    } catch {
      return fail(res, 400, 'bad path\n');
    }
    if (path.includes('\0')) return fail(res, 400, 'bad path\n');
    const to = redirects[path];
    if (to !== undefined) return redirect(res, to, search);
    let file = resolve(root, '.' + path);
    if (!inside(file)) return fail(res, 403, 'outside the root\n');
    opts.onRequest?.(path);

    let size: number;
    let mtime: Date;
    try {
      // Symbolic links must not lead out of the root either.
      if (!inside(await realpath(file))) return fail(res, 403, 'outside the root\n');
      let st = await stat(file);
      if (st.isDirectory() && opts.index) {
        if (!path.endsWith('/')) return redirect(res, (req.url ?? '/').split(/[?#]/)[0]! + '/', search);
        file = join(file, 'index.html');
        if (!inside(await realpath(file))) return fail(res, 403, 'outside the root\n');
        st = await stat(file);
      }
      if (!st.isFile()) return fail(res, 404, 'not a file\n');
      size = st.size;
      mtime = st.mtime;
    } catch {
      return fail(res, 404, 'not found\n');
    }

    const headers: Record<string, string | number> = {
      ...ISOLATION,
      'Content-Type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      'Cache-Control': cacheControl,
      'Last-Modified': mtime.toUTCString(),
    };
    // A revalidation of an unchanged file (only sent when cacheControl allows caching).
    const since = req.headers['if-modified-since'];
    if (since && !req.headers.range && Math.floor(mtime.getTime() / 1000) <= Math.floor(Date.parse(since) / 1000)) {
      res.writeHead(304, headers);
      return void res.end();
    }
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
      if (opts.onBytes) stream.on('data', (chunk) => opts.onBytes!(path, chunk.length));
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
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') ko(new LayerboxError(`port ${opts.port} on ${host} is already in use (try another --port, or --port 0 for a free one)`, { code: 'CONFLICT' }));
      else if (e.code === 'EACCES') ko(new LayerboxError(`not allowed to listen on port ${opts.port} on ${host}`, { code: 'IO' }));
      else ko(e);
    });
    server.listen(opts.port ?? 0, host, () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    root,
    port,
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
