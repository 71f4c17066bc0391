// A hostile registry, written here (node:http on 127.0.0.1, a random port),
// against the CLI's push and pull: every network read has a timeout and a
// cap, large blobs stream through a temporary file, a cut connection is one
// clear line, and the store is unchanged after every failure.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliMeasured } from './cli-run.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RegistryFetch, memoryStore, pullImage } from '../../src/index.js';
import { CLI, lb } from '../fixtures.js';

const sha = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

let tmp = '';
let server: http.Server;
let port = 0;
const host = () => `127.0.0.1:${port}`;
/** Open sockets, closed at the end (some requests are never answered). */
const sockets = new Set<import('node:net').Socket>();

/** A manifest naming a config and one layer descriptor (digest and size as given). */
function manifestFor(layer: { digest: string; size: number }, diffId = `sha256:${'0'.repeat(64)}`) {
  const config = JSON.stringify({ architecture: 'wasm', os: 'wasip1', rootfs: { type: 'layers', diff_ids: [diffId] } });
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, config: { mediaType: MEDIA.config, digest: sha(config), size: config.length }, layers: [{ mediaType: MEDIA.layer, ...layer }] });
  return { config, manifest };
}

/** Repos of the hostile registry: a manifest and blobs, each a handler. */
type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
const routes = new Map<string, Handler>();

const json = (body: string, type = MEDIA.manifest): Handler => (_req, res) => {
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
};

/** Serves `total` bytes made of `piece` repeated, with backpressure; stops when the client goes. */
function stream(total: number, piece: Buffer, cutAt = Infinity): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': total });
    let sent = 0;
    const more = () => {
      while (sent < total) {
        if (sent >= cutAt) {
          // The connection dies mid-blob.
          res.socket?.destroy();
          return;
        }
        const n = Math.min(piece.length, total - sent, cutAt - sent);
        sent += n;
        if (!res.write(piece.subarray(0, n))) return void res.once('drain', more);
      }
      res.end();
    };
    res.on('close', () => res.removeAllListeners('drain'));
    more();
  };
}

/** Registers an image: manifest by tag `x`, config and layer blobs. */
function image(repo: string, layer: { digest: string; size: number; serve: Handler }, diffId?: string): void {
  const { config, manifest } = manifestFor(layer, diffId);
  routes.set(`/v2/${repo}/manifests/x`, json(manifest));
  routes.set(`/v2/${repo}/blobs/${sha(config)}`, json(config, MEDIA.config));
  routes.set(`/v2/${repo}/blobs/${layer.digest}`, layer.serve);
}

/** A sink registry for pushes: checks each upload's digest, keeps only sizes. */
const pushed = new Map<string, number>();
function sink(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const u = new URL(req.url!, 'http://x');
  const m = /^\/v2\/sink\/(blobs\/uploads\/(\w*)|blobs\/(sha256:[0-9a-f]{64})|manifests\/(\w+))$/.exec(u.pathname);
  if (!m) return false;
  if (req.method === 'HEAD' && m[3]) {
    res.writeHead(pushed.has(m[3]) ? 200 : 404).end();
  } else if (req.method === 'POST' && m[1]?.startsWith('blobs/uploads/')) {
    res.writeHead(202, { Location: `/v2/sink/blobs/uploads/u${randomBytes(4).toString('hex')}` }).end();
  } else if (req.method === 'PUT' && m[2]) {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    req.on('end', () => {
      const d = `sha256:${h.digest('hex')}`;
      if (d !== u.searchParams.get('digest')) return void res.writeHead(400).end('{"errors":[{"code":"DIGEST_INVALID"}]}');
      pushed.set(d, n);
      res.writeHead(201).end();
    });
  } else if (req.method === 'PUT' && m[4]) {
    req.resume();
    req.on('end', () => res.writeHead(201).end());
  } else res.writeHead(405).end();
  return true;
}

const measured = cliMeasured;

/** The store is as it was: no tag, fsck clean, no temporary file left behind. */
async function unchanged(store: string): Promise<void> {
  expect((await lb(store, 'image', 'ls', '--json')).stdout.trim()).toBe('[]');
  const f = await lb(store, 'fsck');
  expect(f.stdout).toMatch(/^ok: /);
  expect(f.code).toBe(0);
  expect(existsSync(join(store, 'tmp')) ? await readdir(join(store, 'tmp')) : []).toEqual([]);
}

let n = 0;
const freshStore = async () => {
  const s = join(tmp, `store-${n++}`);
  await mkdir(s);
  return s;
};

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('build the CLI first (npm run build)');
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-remote-'));
  server = http.createServer((req, res) => {
    if (sink(req, res)) return;
    const h = routes.get(new URL(req.url!, 'http://x').pathname);
    if (h) h(req, res);
    else res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND"}]}');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server?.close(r));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('a hostile registry', () => {
  it('never answers: the pull fails on the idle timeout, in one line, and the store is unchanged', async () => {
    routes.set('/v2/silent/manifests/x', () => {
      /* accept, read the request, say nothing */
    });
    const store = await freshStore();
    const r = await lb(store, 'pull', `${host()}/silent:x`, '--idle-timeout', '1');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`layerbox: pull ${host()}/silent:x: no data from ${host()} for 1 s (idle timeout)\n`);
    await unchanged(store);
  });

  it('never answers a push either', async () => {
    routes.set('/v2/silentpush/blobs/uploads/', () => {});
    const store = await freshStore();
    await writeFile(join(tmp, 'f.txt'), 'x');
    await mkdir(join(tmp, 'small'), { recursive: true });
    await writeFile(join(tmp, 'small', 'f.txt'), 'x');
    expect((await lb(store, 'image', 'import', join(tmp, 'small'), '--tag', 'small:1')).code).toBe(0);
    const r = await lb(store, 'push', 'small:1', `${host()}/silentpush:x`, '--idle-timeout', '1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^layerbox: push ${host()}/silentpush:x: blob sha256:[0-9a-f]{64}: no data from ${host()} for 1 s \\(idle timeout\\)\\n$`));
  });

  it('rejects bad timeout flags as usage errors', async () => {
    const store = await freshStore();
    const r = await lb(store, 'pull', `${host()}/silent:x`, '--connect-timeout', 'soon');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^layerbox: --connect-timeout takes a positive number of seconds, got soon\n/);
  });

  it('sends an endless manifest: refused at the size cap, memory bounded, store unchanged', async () => {
    routes.set('/v2/endless/manifests/x', (_req, res) => {
      res.writeHead(200, { 'Content-Type': MEDIA.manifest });
      const piece = Buffer.alloc(1 << 16, 0x20);
      const more = () => {
        while (res.write(piece));
        res.once('drain', more);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      res.write('{"schemaVersion":2,"x":"');
      more();
    });
    const store = await freshStore();
    const r = await measured(store, 'pull', `${host()}/endless:x`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`layerbox: pull ${host()}/endless:x: manifest is larger than 4 MB; refusing it\n`);
    expect(r.rssMB).toBeLessThan(200);
    await unchanged(store);
  });

  it('declares an endless manifest by its Content-Length: refused before reading it', async () => {
    routes.set('/v2/biglen/manifests/x', (_req, res) => {
      res.writeHead(200, { 'Content-Type': MEDIA.manifest, 'Content-Length': String(2 ** 40) });
      res.write('{');
    });
    const store = await freshStore();
    const r = await lb(store, 'pull', `${host()}/biglen:x`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`layerbox: pull ${host()}/biglen:x: manifest is larger than 4 MB (1048576 MB); refusing it\n`);
    await unchanged(store);
  });

  it('cuts the connection mid-blob: one clear line naming the blob and how far it got', async () => {
    const total = 40 << 20;
    const piece = randomBytes(1 << 20);
    const digest = sha('stand-in: the blob never arrives whole');
    image('cut', { digest, size: total, serve: stream(total, piece, 12 << 20) });
    const store = await freshStore();
    const r = await lb(store, 'pull', `${host()}/cut:x`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`layerbox: connection to ${host()} closed while reading blob ${digest} (12 MB of 40 MB)\n`);
    await unchanged(store);
  });

  it('redirects in a loop: refused after a few hops', async () => {
    routes.set('/v2/loop/manifests/x', (_req, res) => res.writeHead(302, { Location: '/v2/loop/manifests/x' }).end());
    const store = await freshStore();
    const r = await lb(store, 'pull', `${host()}/loop:x`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`layerbox: pull ${host()}/loop:x: more than 5 redirects\n`);
    await unchanged(store);
  });

  it('sends a 3 GB blob: streamed to a temporary file while hashed, RSS bounded, the digest check fails, nothing left behind', async () => {
    const total = 3 * 1024 ** 3;
    const digest = sha('not what will be sent');
    image('huge', { digest, size: total, serve: stream(total, randomBytes(1 << 20)) });
    const store = await freshStore();
    const r = await measured(store, 'pull', `${host()}/huge:x`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^layerbox: pull ${host()}/huge:x: blob ${digest} does not match its digest \\(its content hashes to sha256:[0-9a-f]{64}\\)\\n$`));
    expect(r.rssMB).toBeLessThan(200);
    await unchanged(store);
  }, 300_000);

  it('sends a blob longer than its descriptor: reading stops at the declared size', async () => {
    const declared = 1 << 20;
    const digest = sha('whatever');
    image('long', { digest, size: declared, serve: stream(64 << 20, randomBytes(1 << 16)) });
    const store = await freshStore();
    const r = await lb(store, 'pull', `${host()}/long:x`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`layerbox: pull ${host()}/long:x: blob ${digest} is longer than the ${declared} bytes its descriptor says\n`);
    await unchanged(store);
  });
});

describe('timeouts in the library', () => {
  // A host whose connection never comes up (the fetch is told nothing), and one
  // that connects and then says nothing: the two timeouts are told apart.
  const hang = (connect: boolean): RegistryFetch => (_url, init) =>
    new Promise((_resolve, reject) => {
      if (connect) init.onConnect?.();
      const aborted = init.signal as unknown as { addEventListener(t: string, f: () => void): void; reason: unknown };
      aborted.addEventListener('abort', () => reject(aborted.reason));
    });

  it('a connection that never comes up fails on the connect timeout', async () => {
    const s = memoryStore();
    await expect(pullImage(s, '10.0.0.1:5000/x:y', { gunzip: (b) => b, fetch: hang(false), connectTimeout: 0.2, idleTimeout: 60 })).rejects.toThrow(
      'pull 10.0.0.1:5000/x:y: cannot connect to 10.0.0.1:5000 within 0.2 s (connect timeout)',
    );
  });

  it('a connection that comes up and stays silent fails on the idle timeout', async () => {
    const s = memoryStore();
    await expect(pullImage(s, '10.0.0.1:5000/x:y', { gunzip: (b) => b, fetch: hang(true), connectTimeout: 60, idleTimeout: 0.2 })).rejects.toThrow(
      'pull 10.0.0.1:5000/x:y: no data from 10.0.0.1:5000 for 0.2 s (idle timeout)',
    );
  });

  it('timeouts must be positive', async () => {
    await expect(pullImage(memoryStore(), '10.0.0.1:5000/x:y', { gunzip: (b) => b, fetch: hang(true), idleTimeout: 0 })).rejects.toThrow('idle timeout must be a positive number of seconds, got 0');
  });
});

describe('push streams', () => {
  it('pushes a 200 MB image with its layer made, gzipped and uploaded as a stream: RSS bounded', async () => {
    const dir = join(tmp, 'big');
    await mkdir(dir);
    // Incompressible, so the gzip blob is as large as the layer.
    const piece = randomBytes(1 << 20);
    const parts = Array.from({ length: 200 }, (_, i) => Buffer.concat([piece.subarray(i), piece.subarray(0, i)]));
    await writeFile(join(dir, 'blob.bin'), Buffer.concat(parts));
    parts.length = 0;
    await writeFile(join(dir, 'small.txt'), 'hello\n');
    const store = await freshStore();
    expect((await lb(store, 'image', 'import', dir, '--tag', 'big:1')).code).toBe(0);
    await rm(dir, { recursive: true });
    const r = await measured(store, 'push', 'big:1', `${host()}/sink:v1`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: 2 blobs uploaded, 0 already there/);
    // The sink checked every upload against its digest; the layer is all there.
    expect(Math.max(...pushed.values())).toBeGreaterThan(200 << 20);
    expect(r.rssMB).toBeLessThan(250);
  }, 300_000);
});
