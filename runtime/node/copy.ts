import { mkdir, readFile, readdir, lstat, readlink, symlink, writeFile, chmod, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Box, FsError, LayerboxError } from '../../src/index.js';

/** Copies a host file or directory tree into a box at `dest` (like `docker cp`: into an existing directory, or as `dest`). */
export async function copyIntoBox(box: Box, src: string, dest: string): Promise<number> {
  const fs = box.fs;
  const st = await lstat(src).catch(() => null);
  if (!st) throw new LayerboxError(`no such file or directory: ${src}`);
  let target = dest;
  if (fs.exists(dest) && fs.stat(dest).type === 'dir') target = `${dest.replace(/\/+$/, '')}/${basename(src)}`;
  let count = 0;
  const put = async (host: string, guest: string): Promise<void> => {
    const s = await lstat(host);
    if (s.isDirectory()) {
      if (!fs.exists(guest, false)) fs.mkdir(guest, s.mode & 0o7777);
      for (const n of (await readdir(host)).sort()) await put(join(host, n), `${guest}/${n}`);
    } else if (s.isSymbolicLink()) {
      if (fs.exists(guest, false)) fs.unlink(guest);
      fs.symlink(await readlink(host), guest);
    } else if (s.isFile()) {
      fs.writeFile(guest, new Uint8Array(await readFile(host)), s.mode & 0o7777);
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
  const get = async (guest: string, host: string): Promise<void> => {
    const s = fs.lstat(guest);
    if (s.type === 'dir') {
      await mkdir(host, { recursive: true });
      for (const e of fs.readdir(guest)) await get(`${guest.replace(/\/+$/, '')}/${e.name}`, join(host, e.name));
      await chmod(host, s.mode);
    } else if (s.type === 'symlink') {
      await symlink(fs.readlink(guest), host);
    } else {
      await writeFile(host, fs.readFile(guest), { mode: s.mode });
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
