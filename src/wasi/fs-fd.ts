import { Errno, FsError } from '../errno.js';
import type { DirEntry, Stat } from '../overlay/overlay.js';
import { DIR_RIGHTS, FDFLAGS, FILETYPE, FILE_RIGHTS, FSTFLAGS, LOOKUP_SYMLINK_FOLLOW, OFLAGS, RIGHTS, WHENCE } from './defs.js';
import { Dirent, Fd, Fdstat, Filestat, Prestat } from './fd.js';
import type { GuestFile, GuestFs } from './guest-fs.js';

/** Runs a filesystem call and turns an FsError into its errno. */
export function attempt(f: () => void): number {
  try {
    f();
    return Errno.SUCCESS;
  } catch (e) {
    if (e instanceof FsError) return e.errno;
    throw e;
  }
}

function attemptR<K extends string, T>(key: K, empty: T, f: () => T): { ret: number } & { [P in K]: T } {
  try {
    return { ret: Errno.SUCCESS, [key]: f() } as { ret: number } & { [P in K]: T };
  } catch (e) {
    if (e instanceof FsError) return { ret: e.errno, [key]: empty } as { ret: number } & { [P in K]: T };
    throw e;
  }
}

const I64_MAX = (1n << 63n) - 1n;

const TYPE = { file: FILETYPE.REGULAR_FILE, dir: FILETYPE.DIRECTORY, symlink: FILETYPE.SYMBOLIC_LINK } as const;

export function toFilestat(st: Stat, dev = 1n): Filestat {
  return new Filestat(dev, BigInt(st.ino), TYPE[st.type], BigInt(st.nlink), BigInt(st.size), st.atime, st.mtime, st.ctime);
}

/** Resolves the times of a set_times call: explicit, now, or unchanged (undefined). */
function times(atim: bigint, mtim: bigint, flags: number, now: () => bigint): [bigint | undefined, bigint | undefined] | null {
  if ((flags & FSTFLAGS.ATIM && flags & FSTFLAGS.ATIM_NOW) || (flags & FSTFLAGS.MTIM && flags & FSTFLAGS.MTIM_NOW)) return null;
  const a = flags & FSTFLAGS.ATIM_NOW ? now() : flags & FSTFLAGS.ATIM ? atim : undefined;
  const m = flags & FSTFLAGS.MTIM_NOW ? now() : flags & FSTFLAGS.MTIM ? mtim : undefined;
  return [a, m];
}

export interface FsFdContext {
  fs: GuestFs;
  /** Path inside `fs` the guest may not climb above (the mount's root). */
  root: string;
  now: () => bigint;
  /** Called on fd_sync / fd_datasync after the filesystem's own sync (an extra hook for embedders). */
  onSync?: () => void;
  dev: bigint;
}

/** fd_sync's part for the filesystem: a box makes its changes durable (its journal), then the embedder's hook runs. */
function syncFs(ctx: FsFdContext): void {
  ctx.fs.sync?.();
  ctx.onSync?.();
}

/** An fd with WASI rights: they only ever shrink (fd_fdstat_set_rights). */
abstract class RightsFd extends Fd {
  constructor(public rightsBase: bigint, public rightsInheriting: bigint) {
    super();
  }
  can(r: bigint): boolean {
    return (this.rightsBase & r) === r;
  }
  override fd_fdstat_set_rights(base: bigint, inheriting: bigint): number {
    if ((base & ~this.rightsBase) || (inheriting & ~this.rightsInheriting)) return Errno.NOTCAPABLE;
    this.rightsBase = base;
    this.rightsInheriting = inheriting;
    return Errno.SUCCESS;
  }
}

/** A directory of a guest filesystem (a preopen, or one opened with path_open). */
export class DirFd extends RightsFd {
  /** Names handed out by readdir, so cookie n means "after names[n - 3]" even while the directory changes. */
  private issued: string[] = [];
  /** Each name's place in `issued`: listing the directory again reuses its cookies, so re-reading it forever does not grow the host's memory. */
  private issuedAt = new Map<string, number>();
  private cache: { version: number; entries: DirEntry[] } | null = null;

  constructor(readonly ctx: FsFdContext, readonly path: string, rightsBase: bigint, rightsInheriting: bigint, readonly preopenName?: string) {
    super(rightsBase, rightsInheriting);
  }


  /** Joins a guest-relative path; absolute paths or `..` above the mount are not capable. */
  resolve(rel: string): string | number {
    if (rel.includes('\0')) return Errno.INVAL;
    if (rel.startsWith('/')) return Errno.NOTCAPABLE;
    let depth = this.path.slice(this.ctx.root.length).split('/').filter((c) => c !== '').length;
    for (const c of rel.split('/')) {
      if (c === '' || c === '.') continue;
      depth += c === '..' ? -1 : 1;
      if (depth < 0) return Errno.NOTCAPABLE;
    }
    const base = this.path.endsWith('/') ? this.path : this.path + '/';
    return rel === '' ? this.path : base + rel;
  }

  private withPath(rel: string, right: bigint, f: (p: string) => void): number {
    if (!this.can(right)) return Errno.NOTCAPABLE;
    const p = this.resolve(rel);
    if (typeof p === 'number') return p;
    if (rel === '') return Errno.NOENT;
    return attempt(() => f(p));
  }

  override fd_fdstat_get() {
    return { ret: Errno.SUCCESS, fdstat: new Fdstat(FILETYPE.DIRECTORY, 0, this.rightsBase, this.rightsInheriting) };
  }
  override fd_fdstat_set_flags(_flags: number): number {
    return Errno.SUCCESS;
  }
  override fd_filestat_get() {
    if (!this.can(RIGHTS.FD_FILESTAT_GET)) return { ret: Errno.NOTCAPABLE, filestat: null };
    return attemptR('filestat', null as Filestat | null, () => toFilestat(this.ctx.fs.stat(this.path), this.ctx.dev));
  }
  override fd_filestat_set_times(atim: bigint, mtim: bigint, flags: number): number {
    if (!this.can(RIGHTS.FD_FILESTAT_SET_TIMES)) return Errno.NOTCAPABLE;
    const t = times(atim, mtim, flags, this.ctx.now);
    if (!t) return Errno.INVAL;
    return attempt(() => this.ctx.fs.utimes(this.path, t[0], t[1]));
  }
  override fd_prestat_get() {
    return this.preopenName === undefined ? { ret: Errno.BADF, prestat: null } : { ret: Errno.SUCCESS, prestat: new Prestat(this.preopenName) };
  }
  override fd_read(_size: number) {
    return { ret: Errno.ISDIR, data: new Uint8Array() };
  }
  override fd_write(_data: Uint8Array) {
    return { ret: Errno.ISDIR, nwritten: 0 };
  }
  override fd_pread(_size: number, _offset: bigint) {
    return { ret: Errno.ISDIR, data: new Uint8Array() };
  }
  override fd_pwrite(_data: Uint8Array, _offset: bigint) {
    return { ret: Errno.ISDIR, nwritten: 0 };
  }
  override fd_seek(_offset: bigint, _whence: number) {
    return { ret: Errno.ISDIR, offset: 0n };
  }
  override fd_tell() {
    return { ret: Errno.ISDIR, offset: 0n };
  }
  override fd_sync(): number {
    return attempt(() => syncFs(this.ctx));
  }

  private entries(): DirEntry[] {
    const v = this.ctx.fs.version;
    if (!this.cache || this.cache.version !== v) this.cache = { version: v, entries: this.ctx.fs.readdir(this.path) };
    return this.cache.entries;
  }

  /** Cookies: 0 start, 1 after `.`, 2 after `..`, n >= 3 after the (n-3)th name handed out. */
  override fd_readdir_single(cookie: bigint) {
    if (!this.can(RIGHTS.FD_READDIR)) return { ret: Errno.NOTCAPABLE, dirent: null };
    try {
      if (cookie === 0n) return { ret: Errno.SUCCESS, dirent: new Dirent(1n, BigInt(this.ctx.fs.stat(this.path).ino), '.', FILETYPE.DIRECTORY) };
      if (cookie === 1n) {
        const parent = this.path === this.ctx.root ? this.path : this.path.replace(/\/[^/]*\/?$/, '') || '/';
        return { ret: Errno.SUCCESS, dirent: new Dirent(2n, BigInt(this.ctx.fs.stat(parent).ino), '..', FILETYPE.DIRECTORY) };
      }
      const idx = Number(cookie) - 3;
      if (idx >= this.issued.length) return { ret: Errno.SUCCESS, dirent: null };
      const after = idx < 0 ? undefined : this.issued[idx]!;
      const list = this.entries();
      let lo = 0, hi = list.length;
      if (after !== undefined) {
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (list[mid]!.name <= after) lo = mid + 1;
          else hi = mid;
        }
      }
      const e = list[lo];
      if (!e) return { ret: Errno.SUCCESS, dirent: null };
      let at = this.issuedAt.get(e.name);
      if (at === undefined) {
        at = this.issued.push(e.name) - 1;
        this.issuedAt.set(e.name, at);
      }
      return { ret: Errno.SUCCESS, dirent: new Dirent(BigInt(at + 3), BigInt(e.ino), e.name, TYPE[e.type]) };
    } catch (e) {
      if (e instanceof FsError) return { ret: e.errno, dirent: null };
      throw e;
    }
  }

  override path_create_directory(rel: string): number {
    return this.withPath(rel, RIGHTS.PATH_CREATE_DIRECTORY, (p) => this.ctx.fs.mkdir(p));
  }
  override path_remove_directory(rel: string): number {
    return this.withPath(rel, RIGHTS.PATH_REMOVE_DIRECTORY, (p) => {
      if (rel.replace(/\/+$/, '').split('/').pop() === '.') throw new FsError(Errno.INVAL, 'cannot remove .');
      this.ctx.fs.rmdir(p);
    });
  }
  override path_unlink_file(rel: string): number {
    return this.withPath(rel, RIGHTS.PATH_UNLINK_FILE, (p) => {
      if (rel.endsWith('/')) {
        const st = this.ctx.fs.stat(p.replace(/\/+$/, ''), false);
        throw new FsError(st.type === 'dir' ? Errno.ISDIR : Errno.NOTDIR, rel);
      }
      this.ctx.fs.unlink(p);
    });
  }
  override path_filestat_get(flags: number, rel: string) {
    if (!this.can(RIGHTS.PATH_FILESTAT_GET)) return { ret: Errno.NOTCAPABLE, filestat: null };
    const p = this.resolve(rel);
    if (typeof p === 'number') return { ret: p, filestat: null };
    return attemptR('filestat', null as Filestat | null, () => toFilestat(this.ctx.fs.stat(p, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0), this.ctx.dev));
  }
  override path_filestat_set_times(flags: number, rel: string, atim: bigint, mtim: bigint, fst: number): number {
    const t = times(atim, mtim, fst, this.ctx.now);
    if (!t) return Errno.INVAL;
    return this.withPath(rel, RIGHTS.PATH_FILESTAT_SET_TIMES, (p) => this.ctx.fs.utimes(p, t[0], t[1], (flags & LOOKUP_SYMLINK_FOLLOW) !== 0));
  }
  override path_readlink(rel: string) {
    if (!this.can(RIGHTS.PATH_READLINK)) return { ret: Errno.NOTCAPABLE, data: null };
    const p = this.resolve(rel);
    if (typeof p === 'number') return { ret: p, data: null };
    return attemptR('data', null as string | null, () => this.ctx.fs.readlink(p));
  }
  /** Not in the shim's contract (its WASI never passes symlinks to fds); our host calls it when present. */
  path_symlink(target: string, rel: string): number {
    if (target.includes('\0')) return Errno.INVAL;
    return this.withPath(rel, RIGHTS.PATH_SYMLINK, (p) => this.ctx.fs.symlink(target, p));
  }
  /** Rename to a directory fd of the same filesystem (another filesystem: EXDEV). */
  path_rename(rel: string, to: Fd, toRel: string): number {
    if (!(to instanceof DirFd)) return Errno.XDEV;
    if (to.ctx.fs !== this.ctx.fs) return Errno.XDEV;
    if (!to.can(RIGHTS.PATH_RENAME_TARGET)) return Errno.NOTCAPABLE;
    const dst = to.resolve(toRel);
    if (typeof dst === 'number') return dst;
    return this.withPath(rel, RIGHTS.PATH_RENAME_SOURCE, (p) => this.ctx.fs.rename(p, dst));
  }
  path_link_to(flags: number, rel: string, to: Fd, toRel: string): number {
    if (!(to instanceof DirFd) || to.ctx.fs !== this.ctx.fs) return Errno.XDEV;
    if (!to.can(RIGHTS.PATH_LINK_TARGET)) return Errno.NOTCAPABLE;
    const dst = to.resolve(toRel);
    if (typeof dst === 'number') return dst;
    return this.withPath(rel, RIGHTS.PATH_LINK_SOURCE, (p) => this.ctx.fs.link(p, dst, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0));
  }

  override path_open(dirflags: number, rel: string, oflags: number, base: bigint, inheriting: bigint, fdflags: number) {
    const fail = (ret: number) => ({ ret, fd_obj: null });
    if (!this.can(RIGHTS.PATH_OPEN)) return fail(Errno.NOTCAPABLE);
    if (oflags & OFLAGS.CREAT && !this.can(RIGHTS.PATH_CREATE_FILE)) return fail(Errno.NOTCAPABLE);
    if (oflags & OFLAGS.TRUNC && !this.can(RIGHTS.PATH_FILESTAT_SET_SIZE)) return fail(Errno.NOTCAPABLE);
    const p = this.resolve(rel);
    if (typeof p === 'number') return fail(p);
    const follow = (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0;
    const fs = this.ctx.fs;
    try {
      const st = fs.tryStat(p, follow);
      if (st && oflags & OFLAGS.CREAT && oflags & OFLAGS.EXCL) return fail(Errno.EXIST);
      if (oflags & OFLAGS.DIRECTORY) {
        if (!st) return fail(oflags & OFLAGS.CREAT ? Errno.INVAL : Errno.NOENT);
        if (st.type !== 'dir') return fail(Errno.NOTDIR);
      }
      if (st?.type === 'dir') {
        if (oflags & OFLAGS.TRUNC) return fail(Errno.ISDIR);
        // Opening a directory for writing (wasi-libc asks for FD_WRITE on O_WRONLY/O_RDWR).
        if (base & RIGHTS.FD_WRITE && !(oflags & OFLAGS.DIRECTORY)) return fail(Errno.ISDIR);
        const dirRights = DIR_RIGHTS | FILE_RIGHTS;
        return { ret: Errno.SUCCESS, fd_obj: new DirFd(this.ctx, p.replace(/\/+$/, '') || '/', base & this.rightsInheriting & DIR_RIGHTS, inheriting & this.rightsInheriting & dirRights) };
      }
      if (st?.type === 'symlink') return fail(Errno.LOOP);
      if (rel.endsWith('/')) return fail(st ? Errno.NOTDIR : oflags & OFLAGS.CREAT ? Errno.ISDIR : Errno.NOENT);
      const h = fs.open(p, { create: (oflags & OFLAGS.CREAT) !== 0, exclusive: (oflags & OFLAGS.EXCL) !== 0, truncate: (oflags & OFLAGS.TRUNC) !== 0, follow });
      return { ret: Errno.SUCCESS, fd_obj: new FileFd(this.ctx, h, base & this.rightsInheriting & FILE_RIGHTS, inheriting & this.rightsInheriting & FILE_RIGHTS, fdflags) };
    } catch (e) {
      if (e instanceof FsError) return fail(e.errno);
      throw e;
    }
  }
}

/** A regular file of a guest filesystem, with its own position and flags. */
export class FileFd extends RightsFd {
  position = 0;
  /** GuestFile.write copies what it keeps: writes are handed views of guest memory. */
  readonly writesCopied = true;
  constructor(readonly ctx: FsFdContext, readonly file: GuestFile, rightsBase: bigint, rightsInheriting: bigint, public flags: number) {
    super(rightsBase, rightsInheriting);
  }
  override fd_close(): number {
    this.file.close?.();
    return Errno.SUCCESS;
  }
  override fd_fdstat_get() {
    return { ret: Errno.SUCCESS, fdstat: new Fdstat(FILETYPE.REGULAR_FILE, this.flags, this.rightsBase, this.rightsInheriting) };
  }
  override fd_fdstat_set_flags(flags: number): number {
    if (!this.can(RIGHTS.FD_FDSTAT_SET_FLAGS)) return Errno.NOTCAPABLE;
    this.flags = flags;
    return Errno.SUCCESS;
  }
  override fd_filestat_get() {
    if (!this.can(RIGHTS.FD_FILESTAT_GET)) return { ret: Errno.NOTCAPABLE, filestat: null };
    return attemptR('filestat', null as Filestat | null, () => toFilestat(this.file.stat(), this.ctx.dev));
  }
  override fd_filestat_set_size(size: bigint): number {
    if (!this.can(RIGHTS.FD_FILESTAT_SET_SIZE)) return Errno.NOTCAPABLE;
    // The guest's u64 arrives as a signed i64: past 2^63 - 1 it is negative, as in ftruncate.
    if (size < 0n) return Errno.INVAL;
    return attempt(() => this.file.truncate(Number(size)));
  }
  override fd_allocate(offset: bigint, len: bigint): number {
    if (!this.can(RIGHTS.FD_ALLOCATE)) return Errno.NOTCAPABLE;
    // As posix_fallocate: offsets are signed 64-bit, and the end must not overflow them.
    if (offset < 0n || len < 0n || offset + len > I64_MAX) return Errno.INVAL;
    const end = Number(offset + len);
    return attempt(() => {
      if (end > this.file.size) this.file.truncate(end);
    });
  }
  override fd_filestat_set_times(atim: bigint, mtim: bigint, flags: number): number {
    if (!this.can(RIGHTS.FD_FILESTAT_SET_TIMES)) return Errno.NOTCAPABLE;
    const t = times(atim, mtim, flags, this.ctx.now);
    if (!t) return Errno.INVAL;
    return attempt(() => this.file.utimes(t[0], t[1]));
  }
  override fd_read(size: number) {
    if (!this.can(RIGHTS.FD_READ)) return { ret: Errno.NOTCAPABLE, data: new Uint8Array() };
    const r = attemptR('data', new Uint8Array(), () => this.file.read(this.position, size, true));
    this.position += r.data.length;
    return r;
  }
  override fd_pread(size: number, offset: bigint) {
    if (!this.can(RIGHTS.FD_READ | RIGHTS.FD_SEEK)) return { ret: Errno.NOTCAPABLE, data: new Uint8Array() };
    if (offset < 0n) return { ret: Errno.INVAL, data: new Uint8Array() };
    return attemptR('data', new Uint8Array(), () => this.file.read(Number(offset), size, true));
  }
  /** fd_read into guest memory without a copy in between (when the file can). Null: use fd_read. */
  fd_read_into(dest: Uint8Array): { ret: number; n: number } | null {
    if (!this.file.readInto) return null;
    if (!this.can(RIGHTS.FD_READ)) return { ret: Errno.NOTCAPABLE, n: 0 };
    const r = attemptR('n', 0, () => this.file.readInto!(this.position, dest));
    this.position += r.n;
    return r;
  }
  fd_pread_into(dest: Uint8Array, offset: bigint): { ret: number; n: number } | null {
    if (!this.file.readInto) return null;
    if (!this.can(RIGHTS.FD_READ | RIGHTS.FD_SEEK)) return { ret: Errno.NOTCAPABLE, n: 0 };
    if (offset < 0n) return { ret: Errno.INVAL, n: 0 };
    return attemptR('n', 0, () => this.file.readInto!(Number(offset), dest));
  }
  override fd_write(data: Uint8Array) {
    if (!this.can(RIGHTS.FD_WRITE)) return { ret: Errno.NOTCAPABLE, nwritten: 0 };
    return attemptR('nwritten', 0, () => {
      if (this.flags & FDFLAGS.APPEND) this.position = this.file.size;
      this.file.write(this.position, data);
      this.position += data.length;
      if (this.flags & (FDFLAGS.SYNC | FDFLAGS.DSYNC)) {
        this.file.sync?.();
        syncFs(this.ctx);
      }
      return data.length;
    });
  }
  override fd_pwrite(data: Uint8Array, offset: bigint) {
    if (!this.can(RIGHTS.FD_WRITE | RIGHTS.FD_SEEK)) return { ret: Errno.NOTCAPABLE, nwritten: 0 };
    if (offset < 0n) return { ret: Errno.INVAL, nwritten: 0 };
    return attemptR('nwritten', 0, () => {
      // As on Linux, pwrite on an O_APPEND file appends.
      this.file.write(this.flags & FDFLAGS.APPEND ? this.file.size : Number(offset), data);
      return data.length;
    });
  }
  override fd_seek(offset: bigint, whence: number) {
    if (!this.can(RIGHTS.FD_SEEK) && !(offset === 0n && whence === WHENCE.CUR && this.can(RIGHTS.FD_TELL))) return { ret: Errno.NOTCAPABLE, offset: 0n };
    const base = whence === WHENCE.SET ? 0 : whence === WHENCE.CUR ? this.position : whence === WHENCE.END ? this.file.size : NaN;
    if (Number.isNaN(base)) return { ret: Errno.INVAL, offset: 0n };
    const next = BigInt(base) + offset;
    if (next < 0n || next > I64_MAX) return { ret: Errno.INVAL, offset: 0n };
    this.position = Number(next);
    return { ret: Errno.SUCCESS, offset: next };
  }
  override fd_tell() {
    if (!this.can(RIGHTS.FD_TELL)) return { ret: Errno.NOTCAPABLE, offset: 0n };
    return { ret: Errno.SUCCESS, offset: BigInt(this.position) };
  }
  override fd_sync(): number {
    return attempt(() => {
      this.file.sync?.();
      syncFs(this.ctx);
    });
  }
}
