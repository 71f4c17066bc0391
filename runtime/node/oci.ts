import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { closeSync, createReadStream, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { isZero } from '../../src/overlay/content.js';
import { type FileHandle, mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { constants, createGunzip, createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { type ArchiveReader, type ArchiveStreams, type Digest, type StreamHasher, readTarAt, LayerboxError, type OciFormat, type PullResult, type PushResult, type RegistryFetch, type Spool, type SpoolFactory, type Store, type StoredLayer, bundlePieces, detectOciArchive, exportOci, importOci, pullImage, pushImage, readTar, tarPieces, writeTar } from '../../src/index.js';

const GZIP_OPTIONS = { level: 6, memLevel: 8, windowBits: 15, strategy: constants.Z_DEFAULT_STRATEGY };

/** Fixed level, no name, no timestamp (zlib writes mtime 0): the same tar always gives the same bytes. */
export function deterministicGzip(tar: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(tar, GZIP_OPTIONS));
}

/** Writes all of `b` at the end of file `fd`. */
function writeAll(fd: number, b: Uint8Array): void {
  for (let o = 0; o < b.length; ) o += writeSync(fd, b, o, b.length - o);
}

/** A file's bytes as pieces of 1 MiB, read as they are asked for. */
function* fileBody(path: string): Generator<Uint8Array> {
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const buf = new Uint8Array(1 << 20);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Keeps gzip layer blobs in files under `dir` as their tars stream in
 * (gzipped with the same deterministic settings as `deterministicGzip`),
 * hashing as it goes; an uncompressed (docker) layer is only hashed, and made
 * again from the image when it is written out. Memory stays at a few pieces,
 * whatever the layer's size.
 */
function fileLayerSink(dir: string): (tar: () => Iterable<Uint8Array>, gzip: boolean) => Promise<StoredLayer> {
  let n = 0;
  return async (tar, gzip) => {
    const tarHash = createHash('sha256');
    if (!gzip) {
      let size = 0;
      for (const piece of tar()) {
        tarHash.update(piece);
        size += piece.length;
      }
      const diffId = `sha256:${tarHash.digest('hex')}` as Digest;
      return { diffId, digest: diffId, size, body: tar };
    }
    const path = join(dir, `layer-${n++}`);
    const fd = openSync(path, 'w');
    const blobHash = createHash('sha256');
    let size = 0;
    try {
      const z = createGzip(GZIP_OPTIONS);
      z.on('data', (b: Buffer) => {
        blobHash.update(b);
        writeAll(fd, b);
        size += b.length;
      });
      const done = once(z, 'end');
      for (const piece of tar()) {
        tarHash.update(piece);
        if (!z.write(piece)) await once(z, 'drain');
      }
      z.end();
      await done;
    } finally {
      closeSync(fd);
    }
    return { diffId: `sha256:${tarHash.digest('hex')}` as Digest, digest: `sha256:${blobHash.digest('hex')}` as Digest, size, body: () => fileBody(path) };
  };
}

function gunzip(data: Uint8Array): Uint8Array {
  return new Uint8Array(gunzipSync(data));
}

/**
 * Writes pieces to a new file, leaving runs of zeros as holes (a sparse
 * file inside an archive stays sparse on disk).
 */
function writeSparse(fd: number, pieces: Iterable<Uint8Array>): void {
  let pos = 0, hole = false;
  for (const piece of pieces) {
    if (piece.length >= 4096 && isZero(piece)) hole = true;
    else for (let o = 0; o < piece.length; ) o += writeSync(fd, piece, o, piece.length - o, pos + o);
    pos += piece.length;
  }
  if (hole) ftruncateSync(fd, pos);
}

/** Images as an OCI image layout in a tar (`oci`) or a `docker save` archive (`docker`). */
export async function exportOciArchive(store: Store, images: string[], format: OciFormat): Promise<Uint8Array> {
  return writeTar(await exportOci(store, images, { format, gzip: deterministicGzip }));
}

/**
 * The same archive written to the file `out`, streamed: layers go through
 * temporary files next to it, so files of any size (past 4 GiB too) export
 * in bounded memory.
 */
export async function exportOciArchiveToFile(store: Store, images: string[], format: OciFormat, out: string): Promise<void> {
  const tmp = await mkdtemp(join(dirname(out), '.layerbox-export-')).catch(() => mkdtemp(join(tmpdir(), 'layerbox-export-')));
  try {
    const entries = await exportOci(store, images, { format, gzip: deterministicGzip, layerSink: fileLayerSink(tmp) });
    const fd = openSync(out, 'w');
    try {
      writeSparse(fd, tarPieces(entries));
    } catch (e) {
      closeSync(fd);
      await rm(out, { force: true });
      throw e;
    }
    closeSync(fd);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A reader over a tar's members (`./` prefixes dropped). */
export function tarReader(bytes: Uint8Array): ArchiveReader {
  const files = new Map<string, Uint8Array>();
  for (const e of readTar(bytes)) {
    const p = e.path.split('/').filter((c) => c !== '' && c !== '.').join('/');
    if (e.type === 'file' && e.data) files.set(p, e.data);
  }
  return async (path) => files.get(path) ?? null;
}

/** A reader over a host directory (an OCI layout): member paths are checked by the importer, never absolute or `..`. */
export function dirReader(dir: string): ArchiveReader {
  return async (path) => {
    if (path.startsWith('/') || path.split('/').includes('..')) return null;
    const p = join(dir, path);
    const st = await stat(p).catch(() => null);
    if (!st?.isFile()) return null;
    return new Uint8Array(await readFile(p));
  };
}

/** Pieces through a zlib stream, fed as it drains: memory stays at a few pieces. A bad or truncated input throws. */
async function* throughZlib(z: Transform, src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const feed = (async () => {
    try {
      for await (const p of src) if (!z.write(p)) await once(z, 'drain');
      z.end();
    } catch (e) {
      z.destroy(e as Error);
    }
  })();
  for await (const out of z) yield new Uint8Array(out.buffer, out.byteOffset, out.length);
  await feed;
}

/** The host's streaming gunzip: pieces in, pieces out; a bad or truncated stream throws. */
export function gunzipStream(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  return throughZlib(createGunzip(), src);
}

/** node:crypto's sha256, fed piece by piece. */
export function streamHasher(): StreamHasher {
  const h = createHash('sha256');
  return { update: (b) => void h.update(b), digest: () => `sha256:${h.digest('hex')}` as Digest };
}

/** Files of a host directory (an OCI layout) as streams; paths checked as dirReader does. */
function dirStreams(dir: string): ArchiveStreams {
  const file = (path: string) => (path.startsWith('/') || path.split('/').includes('..') ? null : join(dir, path));
  return {
    size: async (path) => {
      const p = file(path);
      const st = p ? await stat(p).catch(() => null) : null;
      return st?.isFile() ? st.size : null;
    },
    stream: (path) => {
      const p = file(path);
      if (!p) throw new LayerboxError(`refusing path ${JSON.stringify(path)}`, { code: 'CORRUPT' });
      return createReadStream(p, { highWaterMark: 1 << 20 });
    },
  };
}

/** Largest member of an archive read whole (documents, small layers); bigger layers are streamed. */
const MAX_WHOLE_MEMBER = 1024 * 1024 * 1024;

/** Positional reads of an open file: `len` bytes at `pos`, fewer only at its end. */
export function positionalReader(fh: FileHandle): (pos: number, len: number) => Promise<Uint8Array> {
  return async (pos, len) => {
    const b = new Uint8Array(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await fh.read(b, got, len - got, pos + got);
      if (!bytesRead) break;
      got += bytesRead;
    }
    return b.subarray(0, got);
  };
}

/**
 * A tar file as an archive: an index of its members made from their headers
 * alone, members read at their offsets, big ones as streams. Memory stays
 * bounded whatever the members' sizes.
 */
async function tarFileArchive(src: string, size: number): Promise<{ read: ArchiveReader; streams: ArchiveStreams; close: () => Promise<void> }> {
  const fh = await open(src, 'r');
  const readAt = positionalReader(fh);
  const members = new Map<string, { offset: number; size: number }>();
  try {
    for await (const m of readTarAt(readAt, size)) {
      const p = m.entry.path.split('/').filter((c) => c !== '' && c !== '.').join('/');
      if (m.entry.type === 'file') members.set(p, { offset: m.offset, size: m.size });
    }
  } catch (e) {
    await fh.close();
    throw e;
  }
  const read: ArchiveReader = async (path) => {
    const m = members.get(path);
    if (!m) return null;
    if (m.size > MAX_WHOLE_MEMBER) throw new LayerboxError(`${src}: ${path} is ${m.size} bytes, too big to read whole`, { code: 'UNSUPPORTED' });
    return readAt(m.offset, m.size);
  };
  const streams: ArchiveStreams = {
    size: async (path) => members.get(path)?.size ?? null,
    stream: (path) => (async function* () {
      const m = members.get(path);
      if (!m) throw new LayerboxError(`${src}: ${path} is missing from the archive`, { code: 'CORRUPT' });
      for (let o = 0; o < m.size; ) {
        const b = await readAt(m.offset + o, Math.min(1 << 20, m.size - o));
        if (!b.length) throw new LayerboxError(`${src}: ${path} is truncated`, { code: 'CORRUPT' });
        o += b.length;
        yield b;
      }
    })(),
  };
  return { read, streams, close: () => fh.close() };
}

/**
 * Imports an OCI image layout (a directory, or a tar of one) or a docker save
 * archive (a tar, possibly gzip-compressed). Null when `src` is neither.
 * A plain tar is read by its members' offsets: layers of any size stream.
 */
export async function importOciArchive(store: Store, src: string, opts: { tag?: string } = {}): Promise<Array<{ digest: Digest; tags: string[] }> | null> {
  const st = await stat(src).catch(() => null);
  if (!st) throw new LayerboxError(`no such file or directory: ${src}`, { code: 'NOT_FOUND' });
  const streaming = { gunzipStream, hasher: streamHasher };
  if (st.isDirectory()) {
    const read = dirReader(src);
    if (!(await detectOciArchive(read))) return null;
    return importOci(store, read, { tag: opts.tag, gunzip, streams: dirStreams(src), ...streaming });
  }
  // An uncompressed archive, read by offsets; null when it is no OCI or docker archive.
  const fromTarFile = async (file: string, size: number) => {
    let archive;
    try {
      archive = await tarFileArchive(file, size);
    } catch {
      return null;
    }
    try {
      if (!(await detectOciArchive(archive.read))) return null;
      return await importOci(store, archive.read, { tag: opts.tag, gunzip, streams: archive.streams, ...streaming });
    } finally {
      await archive.close();
    }
  };
  const head = new Uint8Array(2);
  const fh = await open(src, 'r');
  await fh.read(head, 0, 2, 0).finally(() => fh.close());
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    return fromTarFile(src, st.size);
  }
  // A gzip archive is gunzipped as a stream into a temporary file in the store's
  // tmp (zero runs left as holes), then read by offsets like a plain one: a
  // small file that expands to gigabytes never sits in memory.
  const dir = tmpDirOf(store);
  await mkdir(dir, { recursive: true });
  const plain = join(dir, `${process.pid}-gunzip-${randomBytes(8).toString('hex')}`);
  try {
    const out = await open(plain, 'wx', 0o600);
    let at = 0;
    try {
      for await (const p of gunzipStream(createReadStream(src, { highWaterMark: 1 << 20 }))) {
        if (!isZero(p)) for (let o = 0; o < p.length; ) o += (await out.write(p, o, p.length - o, at + o)).bytesWritten;
        at += p.length;
      }
      await out.truncate(at);
    } catch (e) {
      if (e instanceof LayerboxError || (e as { code?: string }).code?.startsWith('E') && !(e as { code?: string }).code?.startsWith('ERR_')) throw e;
      throw new LayerboxError(`${src}: bad gzip stream: ${(e as Error).message}`, { code: 'CORRUPT' });
    } finally {
      await out.close();
    }
    return await fromTarFile(plain, at);
  } finally {
    await rm(plain, { force: true });
  }
}

/** deterministicGzip as a stream (zlib's output does not depend on how its input is cut). */
export function deterministicGzipStream(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  return throughZlib(createGzip(GZIP_OPTIONS), src);
}

/** A directory for temporary files: the store's own tmp/ (same disk, cleaned if this process dies), else the OS's. */
function tmpDirOf(store: Store): string {
  const loc = (store.backend as { location?: unknown }).location;
  return typeof loc === 'string' ? join(loc, 'tmp') : tmpdir();
}

/** Spools blobs to temporary files in `dir`, named by our pid (the store removes them if this process dies). */
export function fileSpool(dir: string): SpoolFactory {
  return async () => {
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${process.pid}-spool-${randomBytes(8).toString('hex')}`);
    const fh = await open(path, 'wx', 0o600);
    let size = 0, closed = false;
    const s: Spool = {
      async write(p) {
        let o = 0;
        while (o < p.length) o += (await fh.write(p, o, p.length - o)).bytesWritten;
        size += p.length;
      },
      async close() {
        closed = true;
        await fh.close();
        return { size, stream: () => createReadStream(path, { highWaterMark: 1 << 20 }) as unknown as AsyncIterable<Uint8Array> };
      },
      async remove() {
        if (!closed) await fh.close().catch(() => undefined);
        closed = true;
        await rm(path, { force: true });
      },
    };
    return s;
  };
}

// One connection per request: nothing lingers to keep the process up, and a cut connection is never reused.
const agents = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };

/**
 * Requests with node:http(s): the connection time is told apart (connect
 * timeout), bodies stream both ways, redirects come back to the caller.
 */
export const nodeFetch: RegistryFetch = (url, init) =>
  new Promise((resolve, reject) => {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    const headers: Record<string, string | number> = { ...init.headers };
    const body = init.body;
    if (body !== undefined) headers['Content-Length'] = body instanceof Uint8Array ? body.length : body.size;
    const req = (secure ? https : http).request(u, { method: init.method, headers, signal: init.signal as AbortSignal, agent: secure ? agents.https : agents.http });
    req.on('socket', (s) => {
      // TLS counts as connected once its handshake is done.
      if (s.connecting) s.once(secure ? 'secureConnect' : 'connect', () => init.onConnect?.());
      else init.onConnect?.();
    });
    req.on('error', reject);
    req.on('response', (res) =>
      resolve({
        status: res.statusCode ?? 0,
        headers: {
          get: (n) => {
            const v = res.headers[n.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
          },
        },
        body: res as unknown as AsyncIterable<Uint8Array>,
      }),
    );
    if (body === undefined) req.end();
    else if (body instanceof Uint8Array) req.end(body);
    else pipeline(Readable.from(body.stream()), req).catch((e) => req.destroy(e));
  });

/** Network options of push and pull: timeouts in seconds. */
export interface RegistryNetOptions {
  connectTimeout?: number;
  idleTimeout?: number;
}

/** Pushes an image to a registry (`host[:port]/repo[:tag]`), each layer gzipped deterministically as a stream into a temporary file. */
export function pushToRegistry(store: Store, image: string, ref: string, opts: { onProgress?: (msg: string) => void } & RegistryNetOptions = {}): Promise<PushResult> {
  return pushImage(store, image, ref, { gzip: deterministicGzipStream, fetch: nodeFetch, hash: streamHasher, spool: fileSpool(tmpDirOf(store)), ...opts });
}

/** Pulls an image from a registry and tags it (the reference's `repo:tag`, or `opts.tag`); blobs wait in temporary files, layers stream in. */
export function pullFromRegistry(store: Store, ref: string, opts: { tag?: string } & RegistryNetOptions = {}): Promise<PullResult> {
  return pullImage(store, ref, { gunzip, gunzipStream, fetch: nodeFetch, hash: streamHasher, spool: fileSpool(tmpDirOf(store)), ...opts });
}

/** A bundle (see bundlePieces) written to the file `out` as it is made. */
export async function exportBundleToFile(store: Store, what: { images?: string[]; boxes?: string[] }, out: string): Promise<void> {
  const pieces = bundlePieces(store, what);
  // The first piece is made before the file is opened: nothing is left behind when there is nothing to export.
  const first = await pieces.next();
  const fd = openSync(out, 'w');
  try {
    if (!first.done) writeAll(fd, first.value);
    for await (const piece of pieces) writeAll(fd, piece);
  } catch (e) {
    closeSync(fd);
    await rm(out, { force: true });
    throw e;
  }
  closeSync(fd);
}
