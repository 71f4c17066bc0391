import { createReadStream } from 'node:fs';
import { lstat, open, opendir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { LayerboxError, type LayerBuilder } from '../../src/index.js';

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

/** Walks a host directory into a layer: files, directories, symlinks (stored as written) and hard links. */
export async function addHostDirectory(b: LayerBuilder, root: string, opts: HostImportOptions = {}): Promise<void> {
  const st = await lstat(root, { bigint: true }).catch(() => null);
  if (!st?.isDirectory()) throw new LayerboxError(`not a directory: ${root}`);
  const progress = { files: 0, bytes: 0 };
  const links = new Map<string, string>();
  b.addDir('/', { mode: Number(st.mode), mtime: st.mtimeNs });
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names: string[] = [];
    for await (const d of await opendir(dir)) names.push(d.name);
    names.sort();
    for (const name of names) {
      const host = join(dir, name);
      const path = `${rel}/${name}`;
      const s = await lstat(host, { bigint: true });
      const meta = { mode: Number(s.mode & 0o7777n), uid: Number(s.uid), gid: Number(s.gid), mtime: s.mtimeNs };
      if (s.isDirectory()) {
        b.addDir(path, meta);
        await walk(host, path);
      } else if (s.isSymbolicLink()) {
        b.addSymlink(path, await readlink(host), meta);
      } else if (s.isFile()) {
        const key = `${s.dev}:${s.ino}`;
        const first = s.nlink > 1n ? links.get(key) : undefined;
        if (first) b.addHardlink(path, first);
        else {
          await b.addFile(path, readPieces(host, Number(s.size)), meta);
          if (s.nlink > 1n) links.set(key, path);
          progress.bytes += Number(s.size);
        }
      } else {
        opts.onSkip?.(path, 'not a regular file, directory or symlink');
        continue;
      }
      progress.files++;
      opts.onProgress?.(progress);
    }
  };
  await walk(root, '');
}

/** Reads a tar (plain or gzip) into a layer. OCI whiteout names become whiteouts and opaque markers. */
export async function addTar(b: LayerBuilder, file: string, opts: HostImportOptions = {}): Promise<void> {
  const head = Buffer.alloc(2);
  const fh = await open(file, 'r');
  await fh.read(head, 0, 2, 0);
  await fh.close();
  let input: Readable = createReadStream(file);
  if (head[0] === 0x1f && head[1] === 0x8b) input = input.pipe(createGunzip());
  const extract = tar.extract();
  const progress = { files: 0, bytes: 0 };
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const run = async () => {
        const raw = h.name;
        if (raw.startsWith('/')) throw new LayerboxError(`refusing absolute path in tar: ${JSON.stringify(raw)}`);
        const path = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
        const meta = { mode: h.mode ?? undefined, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ? BigInt(h.mtime.getTime()) * 1_000_000n : 0n };
        const base = path.slice(path.lastIndexOf('/') + 1);
        const dir = path.slice(0, Math.max(0, path.lastIndexOf('/')));
        if (path === '' || path === '.') {
          if (h.type === 'directory') b.addDir('/', meta);
        } else if (base === '.wh..wh..opq') {
          b.addDir(dir || '/');
          b.markOpaque(dir || '/');
        } else if (base.startsWith('.wh.')) {
          b.addWhiteout(`${dir}/${base.slice(4)}`);
        } else if (h.type === 'file' || h.type === 'contiguous-file') {
          await b.addFile(path, stream as AsyncIterable<Uint8Array>, meta);
          progress.bytes += h.size ?? 0;
        } else if (h.type === 'directory') b.addDir(path, meta);
        else if (h.type === 'symlink') b.addSymlink(path, h.linkname ?? '', meta);
        else if (h.type === 'link') b.addHardlink(path, (h.linkname ?? '').replace(/^(\.\/)+/, ''));
        else opts.onSkip?.(path, `unsupported tar entry type ${h.type}`);
        progress.files++;
        opts.onProgress?.(progress);
      };
      run().then(() => {
        if ((stream as unknown as Readable).readableEnded) next();
        else stream.on('end', () => next()).resume();
      }, (e) => {
        stream.resume();
        reject(e);
        extract.destroy(e);
      });
    });
    extract.on('finish', resolve);
    extract.on('error', (e) => reject(e instanceof LayerboxError ? e : new LayerboxError(`bad tar ${file}: ${e.message}`)));
    input.on('error', (e) => reject(new LayerboxError(`bad tar ${file}: ${e.message}`)));
  });
  input.pipe(extract);
  await done;
}
