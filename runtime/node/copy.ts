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
  // Listed first (pre-order, on an explicit stack: a tree may be deeper than
  // the JS stack), so a path that is too long on either side stops the copy
  // before anything is written.
  const plan: Array<{ host: string; guest: string }> = [];
  const stack = [{ host: src, guest: target }];
  for (let top = stack.pop(); top; top = stack.pop()) {
    plan.push(top);
    tooLong(top.guest, 'in the box', top.host);
    const s = await lstat(top.host).catch((e) => hostError(e, top.host));
    if (!s.isDirectory()) continue;
    const names = (await readdir(top.host).catch((e) => hostError(e, top.host))).sort();
    for (let i = names.length - 1; i >= 0; i--) stack.push({ host: join(top.host, names[i]!), guest: `${top.guest}/${names[i]!}` });
  }
  let count = 0;
  for (const { host, guest } of plan) {
    const s = await lstat(host);
    if (s.isDirectory()) {
      if (!fs.exists(guest, false)) fs.mkdir(guest, s.mode & 0o7777);
    } else if (s.isSymbolicLink()) {
      if (fs.exists(guest, false)) fs.unlink(guest);
      fs.symlink(await readlink(host), guest);
    } else if (s.isFile()) {
      fs.writeFile(guest, new Uint8Array(await readFile(host)), s.mode & 0o7777);
      fs.chmod(guest, s.mode & 0o7777);
    } else continue;
    count++;
  }
  return count;
}

/** Longest path either side of a copy takes (Linux's PATH_MAX, which the box keeps too). */
const PATH_MAX = 4096;

function tooLong(path: string, where: string, other: string): void {
  if (Buffer.byteLength(path) <= PATH_MAX) return;
  throw new LayerboxError(`cannot copy ${JSON.stringify(other.length > 80 ? other.slice(0, 60) + '...' : other)}: its path ${where} would be ${Buffer.byteLength(path)} bytes, longer than PATH_MAX (${PATH_MAX}); nothing was copied`);
}

function hostError(e: NodeJS.ErrnoException, path: string): never {
  throw new LayerboxError(`cannot read ${JSON.stringify(path.length > 80 ? path.slice(0, 60) + '...' : path)}: ${e.code ?? e.message}`);
}

/** Copies a box path (file or tree) out to the host. Symlinks are written as symlinks, never followed out of the box. */
export async function copyOutOfBox(box: Box, src: string, dest: string): Promise<number> {
  const fs = box.fs;
  const st = fs.lstat(src);
  let target = dest;
  const hostSt = await lstat(dest).catch(() => null);
  if (hostSt?.isDirectory()) target = join(dest, basename(src.replace(/\/+$/, '')) || 'root');
  // Listed first (pre-order by name, on an explicit stack: a guest may nest
  // directories deeper than the JS stack), so a path too long for the host
  // stops the copy before anything is written.
  const plan: Array<{ guest: string; host: string; s: ReturnType<typeof fs.lstat> }> = [];
  const stack = [{ guest: src, host: target }];
  for (let top = stack.pop(); top; top = stack.pop()) {
    tooLong(top.host, 'on the host', top.guest);
    const s = fs.lstat(top.guest);
    plan.push({ ...top, s });
    if (s.type !== 'dir') continue;
    const kids = fs.readdir(top.guest);
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ guest: `${top.guest.replace(/\/+$/, '')}/${kids[i]!.name}`, host: join(top.host, kids[i]!.name) });
  }
  // Directories get their mode and times after their children are written (deepest first).
  const dirs: typeof plan = [];
  for (const { guest, host, s } of plan) {
    if (s.type === 'dir') {
      await mkdir(host, { recursive: true });
      dirs.push({ guest, host, s });
    } else if (s.type === 'symlink') {
      await symlink(fs.readlink(guest), host);
    } else {
      await writeFile(host, fs.readFile(guest), { mode: s.mode });
      await chmod(host, s.mode);
      const t = Number(s.mtime / 1_000_000n) / 1000;
      await utimes(host, t, t);
    }
  }
  for (let i = dirs.length - 1; i >= 0; i--) {
    const { host, s } = dirs[i]!;
    await chmod(host, s.mode);
    const t = Number(s.mtime / 1_000_000n) / 1000;
    await utimes(host, t, t);
  }
  void st;
  return plan.length;
}

export function isFsError(e: unknown): e is FsError {
  return e instanceof FsError;
}
