import { mkdir, open, readdir, lstat, readlink, symlink, chmod, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Box, FsError, LayerboxError } from '../../src/index.js';
import { isZero, sortedIndices } from '../../src/overlay/content.js';

/** How much of a file is read at a time when copying in or out. */
const PIECE = 1 << 20;

/** Copies a host file or directory tree into a box at `dest` (like `docker cp`: into an existing directory, or as `dest`). */
export async function copyIntoBox(box: Box, src: string, dest: string): Promise<number> {
  const fs = box.fs;
  const st = await lstat(src).catch(() => null);
  if (!st) throw new LayerboxError(`no such file or directory: ${src}`);
  let target = dest;
  if (fs.exists(dest) && fs.stat(dest).type === 'dir') target = `${dest.replace(/\/+$/, '')}/${basename(src)}`;
  let count = 0;
  /** A host file into the box piece by piece; zero pieces are left as holes, so a sparse host file stays sparse. */
  const copyFileIn = async (host: string, guest: string, mode: number): Promise<void> => {
    const h = fs.open(guest, { create: true, truncate: true, mode });
    const fh = await open(host, 'r');
    try {
      const buf = new Uint8Array(PIECE);
      let pos = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (!bytesRead) break;
        const piece = buf.subarray(0, bytesRead);
        if (!isZero(piece)) h.write(pos, piece);
        pos += bytesRead;
      }
      if (h.size !== pos) h.truncate(pos);
    } finally {
      await fh.close();
    }
  };
  const put = async (host: string, guest: string): Promise<void> => {
    const s = await lstat(host);
    if (s.isDirectory()) {
      if (!fs.exists(guest, false)) fs.mkdir(guest, s.mode & 0o7777);
      for (const n of (await readdir(host)).sort()) await put(join(host, n), `${guest}/${n}`);
    } else if (s.isSymbolicLink()) {
      if (fs.exists(guest, false)) fs.unlink(guest);
      fs.symlink(await readlink(host), guest);
    } else if (s.isFile()) {
      await copyFileIn(host, guest, s.mode & 0o7777);
      fs.chmod(guest, s.mode & 0o7777);
    } else return;
    count++;
  };
  await put(src, target);
  return count;
}

/** Copies a box path (file or tree) out to the host. Symlinks are written as symlinks, never followed out of the box. */
export async function copyOutOfBox(box: Box, src: string, dest: string): Promise<number> {
  const fs = box.fs;
  const st = fs.lstat(src);
  let target = dest;
  const hostSt = await lstat(dest).catch(() => null);
  if (hostSt?.isDirectory()) target = join(dest, basename(src.replace(/\/+$/, '')) || 'root');
  let count = 0;
  /**
   * A box file out to the host: only the chunks it holds are read and
   * written (at their offsets), holes are left as holes of the host file, so
   * a sparse file stays sparse and memory stays at one piece.
   */
  const copyFileOut = async (guest: string, host: string, mode: number): Promise<void> => {
    const h = fs.open(guest);
    const node = h.node;
    const fh = await open(host, 'w', mode);
    try {
      if (node.kind === 'file') {
        const cs = fs.content.chunkSize, size = node.size;
        const present = sortedIndices(node.chunks);
        for (let i = 0; i < present.length; ) {
          // A run of consecutive chunks, read and written in pieces of up to PIECE bytes.
          let j = i;
          while (j + 1 < present.length && present[j + 1] === present[j]! + 1 && (present[j + 1]! - present[i]! + 1) * cs <= PIECE) j++;
          const from = present[i]! * cs, to = Math.min(size, (present[j]! + 1) * cs);
          const piece = h.read(from, to - from);
          if (!isZero(piece)) await fh.write(piece, 0, piece.length, from);
          i = j + 1;
        }
        await fh.truncate(size);
      }
    } finally {
      await fh.close();
    }
  };
  const get = async (guest: string, host: string): Promise<void> => {
    const s = fs.lstat(guest);
    if (s.type === 'dir') {
      await mkdir(host, { recursive: true });
      for (const e of fs.readdir(guest)) await get(`${guest.replace(/\/+$/, '')}/${e.name}`, join(host, e.name));
      await chmod(host, s.mode);
    } else if (s.type === 'symlink') {
      await symlink(fs.readlink(guest), host);
    } else {
      await copyFileOut(guest, host, s.mode);
      await chmod(host, s.mode);
    }
    const t = Number(s.mtime / 1_000_000n) / 1000;
    if (s.type !== 'symlink') await utimes(host, t, t);
    count++;
  };
  void st;
  await get(src, target);
  return count;
}

export function isFsError(e: unknown): e is FsError {
  return e instanceof FsError;
}
