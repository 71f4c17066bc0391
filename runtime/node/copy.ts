import { mkdir, open, readdir, lstat, readlink, symlink, chmod, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Box, FsError, LayerboxError, codeOfHostError } from '../../src/index.js';
import { isZero, sortedIndices } from '../../src/overlay/content.js';

/** How much of a file is read at a time when copying in or out. */
const PIECE = 1 << 20;

/** Copies a host file or directory tree into a box at `dest` (like `docker cp`: into an existing directory, or as `dest`). */
export async function copyIntoBox(box: Box, src: string, dest: string): Promise<number> {
  const fs = box.fs;
  const st = await lstat(src).catch(() => null);
  if (!st) throw new LayerboxError(`no such file or directory: ${src}`, { code: 'NOT_FOUND' });
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
  for (const { host, guest } of plan) {
    const s = await lstat(host);
    if (s.isDirectory()) {
      if (!fs.exists(guest, false)) fs.mkdir(guest, s.mode & 0o7777);
    } else if (s.isSymbolicLink()) {
      if (fs.exists(guest, false)) fs.unlink(guest);
      fs.symlink(await readlink(host), guest);
    } else if (s.isFile()) {
      await copyFileIn(host, guest, s.mode & 0o7777);
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
  throw new LayerboxError(`cannot copy ${JSON.stringify(other.length > 80 ? other.slice(0, 60) + '...' : other)}: its path ${where} would be ${Buffer.byteLength(path)} bytes, longer than PATH_MAX (${PATH_MAX}); nothing was copied`, { code: 'UNSUPPORTED' });
}

function hostError(e: NodeJS.ErrnoException, path: string): never {
  throw new LayerboxError(`cannot read ${JSON.stringify(path.length > 80 ? path.slice(0, 60) + '...' : path)}: ${e.code ?? e.message}`, { code: codeOfHostError(e), cause: e });
}

/** Copies a box path (file or tree) out to the host. Symlinks are written as symlinks, never followed out of the box. */
export async function copyOutOfBox(box: Box, src: string, dest: string): Promise<number> {
  const fs = box.fs;
  const st = fs.lstat(src);
  let target = dest;
  const hostSt = await lstat(dest).catch(() => null);
  if (hostSt?.isDirectory()) target = join(dest, basename(src.replace(/\/+$/, '')) || 'root');
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
      await copyFileOut(guest, host, s.mode);
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
