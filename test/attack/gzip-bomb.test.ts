// Gzip bombs: a few MB of gzip that expand to GiBs of zeros, as a plain
// `.tar.gz` import, inside an OCI archive and as a registry layer. Gzip is
// decompressed as a stream on every path, so the CLI's memory stays bounded;
// a layer that expands past what its config says, or whose gzip is truncated
// or followed by garbage, imports or fails with one clear line, nothing tagged.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { cliMeasured } from './cli-run.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTar } from '../../src/index.js';
import { CLI, lb } from '../fixtures.js';

const sha = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const GiB = 1024 ** 3;

let tmp = '';

/** A ustar header for one regular file of `size` bytes (writeTar's header, its size field set). */
function fileHeader(name: string, size: number): Buffer {
  const t = writeTar([{ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new Uint8Array() }]);
  const h = Buffer.from(t.subarray(0, 512));
  h.write(size.toString(8).padStart(11, '0'), 124, 'latin1');
  h.fill(32, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A tar of one file of `size` zeros, as a stream, hashed on the way. */
function zeroTar(size: number, hash: ReturnType<typeof createHash>): Readable {
  const zeros = Buffer.alloc(1 << 20);
  return Readable.from(
    (function* () {
      const parts = [fileHeader('zeros', size)];
      for (let left = size; left > 0; left -= zeros.length) parts.push(left >= zeros.length ? zeros : zeros.subarray(0, left));
      parts.push(Buffer.alloc((512 - (size % 512)) % 512), Buffer.alloc(1024));
      for (const p of parts) {
        hash.update(p);
        yield p;
      }
    })(),
  );
}

/** Gzips a tar of `size` zeros into a file; returns the file, its digest and size, and the tar's digest (the diff_id). */
async function bomb(size: number, file: string): Promise<{ file: string; digest: string; size: number; diffId: string }> {
  const th = createHash('sha256');
  await pipeline(zeroTar(size, th), createGzip({ level: 9 }), createWriteStream(file));
  const gz = await readFile(file);
  return { file, digest: sha(gz), size: gz.length, diffId: `sha256:${th.digest('hex')}` };
}

const measured = cliMeasured;

/** The size of /zeros in an image, as a box over it lists it. */
async function zerosSize(store: string, image: string): Promise<number> {
  const box = `b${n++}`;
  expect((await lb(store, 'box', 'create', box, '--image', image)).code).toBe(0);
  const ls = JSON.parse((await lb(store, 'ls', `${box}:/`, '--json')).stdout) as Array<{ name: string; size: number }>;
  return ls.find((e) => e.name === 'zeros')?.size ?? -1;
}

async function unchanged(store: string): Promise<void> {
  expect((await lb(store, 'image', 'ls', '--json')).stdout.trim()).toBe('[]');
  const f = await lb(store, 'fsck');
  expect(f.stdout).toMatch(/^ok: /);
  expect(existsSync(join(store, 'tmp')) ? await readdir(join(store, 'tmp')) : []).toEqual([]);
}

let n = 0;
const freshStore = async () => {
  const s = join(tmp, `store-${n++}`);
  await mkdir(s);
  return s;
};

/** An OCI layout tar of one image whose one layer is `layer` (gzip bytes), its config saying `diffId`. */
function ociLayout(layer: Uint8Array, diffId: string): Uint8Array {
  const config = JSON.stringify({ architecture: 'wasm', os: 'wasip1', rootfs: { type: 'layers', diff_ids: [diffId] } });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
  });
  const index = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'bomb:1' } }] });
  const f = (path: string, data: Uint8Array | string) => ({ path, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, data: typeof data === 'string' ? new TextEncoder().encode(data) : data });
  return writeTar([f('oci-layout', '{"imageLayoutVersion":"1.0.0"}'), f('index.json', index), f(`blobs/sha256/${sha(manifest).slice(7)}`, manifest), f(`blobs/sha256/${sha(config).slice(7)}`, config), f(`blobs/sha256/${sha(layer).slice(7)}`, layer)]);
}

let two: Awaited<ReturnType<typeof bomb>>;
let four: Awaited<ReturnType<typeof bomb>>;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('build the CLI first (npm run build)');
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-gzip-bomb-'));
  two = await bomb(2 * GiB, join(tmp, 'zeros-2g.tar.gz'));
  four = await bomb(4 * GiB, join(tmp, 'zeros-4g.tar.gz'));
}, 300_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('gzip bombs', () => {
  it('import of a ~2 MB .tar.gz holding 2 GiB of zeros: imported, RSS bounded', async () => {
    expect(two.size).toBeLessThan(4 << 20);
    const store = await freshStore();
    const r = await measured(store, 'import', two.file, '--tag', 'zeros:1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.rssMB).toBeLessThan(200);
    expect(await zerosSize(store, 'zeros:1')).toBe(2 * GiB);
  }, 300_000);

  it('an OCI layout whose layer expands to 4 GiB: imported as a stream, RSS bounded', async () => {
    const f = join(tmp, 'oci-bomb.tar');
    await writeFile(f, ociLayout(await readFile(four.file), four.diffId));
    const store = await freshStore();
    const r = await measured(store, 'import', f);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64} bomb:1\n$/);
    expect(r.rssMB).toBeLessThan(200);
    expect(await zerosSize(store, 'bomb:1')).toBe(4 * GiB);
    expect(existsSync(join(store, 'tmp')) ? await readdir(join(store, 'tmp')) : []).toEqual([]);
  }, 300_000);

  it('a layer expanding far past what its config says: refused on its diff_id after streaming, nothing tagged', async () => {
    const f = join(tmp, 'oci-liar.tar');
    const small = writeTar([{ path: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new TextEncoder().encode('a\n') }]);
    await writeFile(f, ociLayout(await readFile(four.file), sha(small)));
    const store = await freshStore();
    const r = await measured(store, 'import', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^layerbox: image manifest sha256:[0-9a-f]{64}, layer 1: uncompressed layer hashes to sha256:[0-9a-f]{64}, but the image config's diff_id is sha256:[0-9a-f]{64}\n$/);
    expect(r.rssMB).toBeLessThan(200);
    await unchanged(store);
  }, 300_000);

  it('a gzip layer followed by garbage, cut short, or with a cut second member: refused in one line, nothing tagged', async () => {
    // As containerd: bytes after the gzip stream that are not another gzip member are an error, not ignored.
    const tar = writeTar([{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: randomBytes(200_000) }]);
    const gz = gzipSync(tar);
    for (const [name, layer] of [
      ['garbage', Buffer.concat([gz, Buffer.from('this is not gzip at all, just bytes after the end')])],
      ['truncated', gz.subarray(0, gz.length - 1000)],
      ['cut-second-member', Buffer.concat([gz, gz.subarray(0, 100)])],
    ] as const) {
      const f = join(tmp, `oci-${name}.tar`);
      await writeFile(f, ociLayout(layer, sha(tar)));
      const store = await freshStore();
      const r = await lb(store, 'import', f);
      expect(r.code, name).toBe(1);
      expect(r.stderr, name).toMatch(/^layerbox: image manifest sha256:[0-9a-f]{64}, layer 1: bad gzip stream: [^\n]+\n$/);
      await unchanged(store);
    }
  }, 120_000);

  it('a registry layer that expands to 4 GiB: pulled as a stream, RSS bounded', async () => {
    const layer = await readFile(four.file);
    const config = JSON.stringify({ architecture: 'wasm', os: 'wasip1', rootfs: { type: 'layers', diff_ids: [four.diffId] } });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: four.digest, size: layer.length }],
    });
    const blobs = new Map<string, [string, Uint8Array | string]>([
      ['/v2/bomb/manifests/x', ['application/vnd.oci.image.manifest.v1+json', manifest]],
      [`/v2/bomb/blobs/${sha(config)}`, ['application/vnd.oci.image.config.v1+json', config]],
      [`/v2/bomb/blobs/${four.digest}`, ['application/octet-stream', layer]],
    ]);
    const server = http.createServer((req, res) => {
      const b = blobs.get(req.url!);
      if (!b) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': b[0], 'Content-Length': Buffer.byteLength(b[1]) }).end(b[1]);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const store = await freshStore();
      const r = await measured(store, 'pull', `127.0.0.1:${(server.address() as AddressInfo).port}/bomb:x`);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64} bomb:x\n$/);
      expect(r.rssMB).toBeLessThan(200);
      expect(await zerosSize(store, 'bomb:x')).toBe(4 * GiB);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 300_000);
});
