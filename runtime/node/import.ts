import { createReadStream, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { LayerboxError, type LayerBuilder, codeOfHostError } from '../../src/index.js';
import { MAX_TAR_NAME } from '../../src/tar.js';

export interface ImportProgress {
  files: number;
  bytes: number;
}

export interface HostImportOptions {
  onProgress?: (p: ImportProgress) => void;
  /** Told about entries that cannot be stored (sockets, devices). */
  onSkip?: (path: string, why: string) => void;
}

async function* readPieces(path: string, size: number): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 4 << 20));
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (!bytesRead) break;
      yield new Uint8Array(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

/** Files up to this size are read in one call. */
const SMALL_FILE = 1 << 20;

/** Walks a host directory into a layer: files, directories, symlinks (stored as written) and hard links. */
export async function addHostDirectory(b: LayerBuilder, root: string, opts: HostImportOptions = {}): Promise<void> {
  const st = await lstat(root, { bigint: true }).catch(() => null);
  if (!st?.isDirectory()) throw new LayerboxError(`not a directory: ${root}`, { code: st ? 'INVALID' : 'NOT_FOUND' });
  const progress = { files: 0, bytes: 0 };
  const links = new Map<string, string>();
  b.addDir('/', { mode: Number(st.mode), mtime: st.mtimeNs });
  // Synchronous calls: a directory of small files is bound by syscall latency, which the
  // thread pool of the async API multiplies. The event loop gets a turn every few files.
  let sinceYield = 0;
  // Pre-order by name on an explicit stack: a host tree may be deeper than the JS stack.
  const stack: Array<{ host: string; path: string }> = [];
  const queue = (dir: string, rel: string): void => {
    const names = hostCall(dir, () => readdirSync(dir)).sort();
    for (let i = names.length - 1; i >= 0; i--) stack.push({ host: join(dir, names[i]!), path: `${rel}/${names[i]!}` });
  };
  queue(root, '');
  for (let top = stack.pop(); top; top = stack.pop()) {
    const { host, path } = top;
    if (path.length > MAX_TAR_NAME) throw new LayerboxError(`cannot import ${tooLong(path)}: its path in the image would be longer than ${MAX_TAR_NAME} bytes`, { code: 'UNSUPPORTED' });
    const s = hostCall(host, () => lstatSync(host, { bigint: true }));
    const meta = { mode: Number(s.mode & 0o7777n), uid: Number(s.uid), gid: Number(s.gid), mtime: s.mtimeNs };
    if (s.isDirectory()) {
      b.addDir(path, meta);
      queue(host, path);
    } else if (s.isSymbolicLink()) {
      b.addSymlink(path, readlinkSync(host), meta);
    } else if (s.isFile()) {
      const key = `${s.dev}:${s.ino}`;
      const first = s.nlink > 1n ? links.get(key) : undefined;
      if (first) b.addHardlink(path, first);
      else {
        const size = Number(s.size);
        await b.addFile(path, size <= SMALL_FILE ? new Uint8Array(readFileSync(host)) : readPieces(host, size), meta);
        if (s.nlink > 1n) links.set(key, path);
        progress.bytes += size;
      }
    } else {
      opts.onSkip?.(path, 'not a regular file, directory or symlink');
      continue;
    }
    progress.files++;
    opts.onProgress?.(progress);
    if (++sinceYield >= 256) {
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
    }
  }
}

/** A host call whose error names the path briefly (a deep host tree passes PATH_MAX: ENAMETOOLONG). */
function hostCall<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new LayerboxError(`cannot read ${tooLong(path)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { code: codeOfHostError(e), cause: e });
  }
}

/** A path for an error line: its start and its length, never the whole of a long one. */
function tooLong(path: string): string {
  return path.length > 80 ? `${JSON.stringify(path.slice(0, 60) + '...')} (${Buffer.byteLength(path)} bytes)` : JSON.stringify(path);
}

/** Reads a tar (plain or gzip) into a layer. OCI whiteout names become whiteouts and opaque markers. */
export async function addTar(b: LayerBuilder, file: string, opts: HostImportOptions = {}): Promise<void> {
  const bad = (e: unknown): LayerboxError => (e instanceof LayerboxError ? e : new LayerboxError(`bad tar ${file}: ${(e as Error)?.message ?? e}`, { code: 'CORRUPT', cause: e }));
  const head = Buffer.alloc(2);
  try {
    const fh = await open(file, 'r');
    try {
      await fh.read(head, 0, 2, 0);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new LayerboxError(`cannot read ${file}: ${(e as Error).message}`, { code: codeOfHostError(e), cause: e });
  }
  const src = createReadStream(file);
  const gunzip = head[0] === 0x1f && head[1] === 0x8b ? createGunzip() : null;
  const extract = tar.extract();
  // A read or gunzip error ends the extraction with that error.
  const fail = (e: Error) => extract.destroy(bad(e));
  src.on('error', fail);
  gunzip?.on('error', fail);
  (gunzip ? src.pipe(gunzip) : src).pipe(extract as unknown as NodeJS.WritableStream);

  const progress = { files: 0, bytes: 0 };
  /** Paths this archive gave an entry of its own (stored form), and the directories marked opaque. */
  const seen = new Set<string>();
  const opaque = new Set<string>();
  try {
    // The iterator hands out the next entry only after this one is handled, so the
    // layer is complete when the loop ends.
    for await (const entry of extract) {
      const h = entry.header;
      const raw = h.name;
      // tar-stream bounds pax headers and GNU long names at 4 MiB; names are bounded here.
      for (const n of [raw, h.linkname ?? ''])
        if (Buffer.byteLength(n) > MAX_TAR_NAME) throw new LayerboxError(`tar entry name ${tooLong(n)} is longer than ${MAX_TAR_NAME} bytes`, { code: 'UNSUPPORTED' });
      if (raw.startsWith('/')) throw new LayerboxError(`refusing absolute path in tar: ${JSON.stringify(raw)}`, { code: 'CORRUPT' });
      // `./a//b/` -> `a/b`; `..` stays for the builder to refuse.
      const path = raw.split('/').filter((c) => c !== '' && c !== '.').join('/');
      const meta = { mode: h.mode ?? undefined, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ? BigInt(h.mtime.getTime()) * 1_000_000n : 0n };
      const base = path.slice(path.lastIndexOf('/') + 1);
      const dir = path.slice(0, Math.max(0, path.lastIndexOf('/')));
      let stored = true;
      if (path === '') {
        if (h.type !== 'directory') throw new LayerboxError(`tar entry ${JSON.stringify(raw)} names the root but is not a directory`, { code: 'CORRUPT' });
        b.addDir('/', meta);
      } else if (base === '.wh..wh..opq') {
        // Applied at the end: the directory's own entry may come before or after its marker.
        if (opaque.has(dir)) throw new LayerboxError(`duplicate entry ${JSON.stringify(raw)}`, { code: 'CORRUPT' });
        opaque.add(dir);
      } else if (base.startsWith('.wh..wh.')) {
        opts.onSkip?.(path, 'whiteout metadata');
        stored = false;
      } else if (base.startsWith('.wh.')) {
        if (base === '.wh.') throw new LayerboxError(`whiteout without a name in tar: ${JSON.stringify(raw)}`, { code: 'CORRUPT' });
        b.addWhiteout(`${dir}/${base.slice(4)}`);
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        await b.addFile(path, entry as AsyncIterable<Uint8Array>, meta);
        progress.bytes += h.size ?? 0;
      } else if (h.type === 'directory') b.addDir(path, meta);
      else if (h.type === 'symlink') b.addSymlink(path, h.linkname ?? '', meta);
      else if (h.type === 'link') b.addHardlink(path, h.linkname ?? '');
      else {
        opts.onSkip?.(path, `unsupported tar entry type ${h.type}`);
        stored = false;
      }
      if (stored && !base.startsWith('.wh.')) seen.add(path);
      entry.resume();
      if (stored) {
        progress.files++;
        opts.onProgress?.(progress);
      }
    }
    for (const d of opaque) {
      if (!seen.has(d)) b.addDir(d || '/');
      b.markOpaque(d || '/');
    }
  } catch (e) {
    throw bad(e);
  } finally {
    extract.destroy();
    gunzip?.destroy();
    src.destroy();
  }
}
