import * as fs from 'node:fs';
import { type DirEntry, type Errno as ErrnoT, FsError, type GuestFile, type GuestFs, LayerboxError, codeOfHostError, type OpenOptions, type Stat, Errno } from '../../src/index.js';

type ErrnoName = keyof typeof ErrnoT;

/**
 * Host errno codes to WASI: the one place host errors are translated. Every
 * WASI errno answers the host code of the same name; the few host codes WASI
 * spells otherwise are listed. Anything else (a code WASI lacks, a libuv code,
 * an error with no code) becomes EIO: a host message or path never reaches
 * the guest, and no host error escapes into the worker.
 */
const HOST_ERRNO: Record<string, ErrnoName> = {
  ...Object.fromEntries(Object.keys(Errno).filter((k) => k !== 'SUCCESS' && k !== 'NOTCAPABLE').map((k) => [`E${k}`, k as ErrnoName])),
  E2BIG: 'TOOBIG', EOPNOTSUPP: 'NOTSUP', EWOULDBLOCK: 'AGAIN', EDEADLOCK: 'DEADLK', ETIME: 'TIMEDOUT',
};

/** The WASI errno for a host error (EIO for anything unknown). */
export function hostErrno(e: unknown): number {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const name = typeof code === 'string' && Object.hasOwn(HOST_ERRNO, code) ? HOST_ERRNO[code]! : 'IO';
  return Errno[name];
}

function translate(e: unknown, what: string): never {
  if (e instanceof FsError) throw e;
  throw new FsError(hostErrno(e), what);
}

function statOf(s: fs.BigIntStats): Stat {
  const type = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'file';
  return { ino: Number(s.ino), type, mode: Number(s.mode & 0o7777n), nlink: Number(s.nlink), size: Number(s.size), uid: Number(s.uid), gid: Number(s.gid), atime: s.atimeNs, mtime: s.mtimeNs, ctime: s.ctimeNs };
}

const toSec = (ns: bigint | undefined, cur: bigint): number => Number(ns ?? cur) / 1e9;

const C = fs.constants;
// libuv opens every descriptor close-on-exec. Node names no O_PATH; Linux's generic value (every architecture Node runs on but sparc/alpha/parisc).
const O_PATH = 0o10000000;
/** A directory handle that only names the directory: lookups through it need search (x), not read, permission. */
const DIR_HANDLE = O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW;
const PATH_MAX = 4096;
const NAME_MAX = 255;
const MAX_SYMLINKS = 40;
/** Directory handles one walk may hold (one per level below the mount root). */
const MAX_DEPTH = 512;

/**
 * The name of `name` inside the directory open on `fd`. The kernel resolves
 * /proc/self/fd/N to the very directory that descriptor holds (no path string
 * is looked up again), then looks up the one component `name` in it: this is
 * openat(fd, name) for a runtime that has no openat.
 */
const at = (fd: number, name?: string | null): string => (name == null ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);

let supported: boolean | undefined;
/** Whether /proc/self/fd resolves descriptors here (Linux with /proc mounted): checked once. */
function procFdWorks(probe: number): boolean {
  if (supported === undefined) {
    try {
      const a = fs.fstatSync(probe), b = fs.statSync(at(probe));
      supported = process.platform === 'linux' && a.ino === b.ino && a.dev === b.dev;
    } catch {
      supported = false;
    }
  }
  return supported;
}

/**
 * Opens a host directory to mount (the handle the mount is confined to: it
 * stays the mount even if its host path is renamed or replaced later). Throws
 * one clear LayerboxError where host mounts cannot be confined.
 */
export function openMountRoot(host: string): number {
  if (process.platform !== 'linux') throw new LayerboxError(`host directory mounts need Linux (/proc/self/fd), not ${process.platform}: cannot mount ${host}`, { code: 'UNSUPPORTED' });
  let fd: number;
  try {
    fd = fs.openSync(host, O_PATH | C.O_DIRECTORY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LayerboxError(code === 'ENOTDIR' ? `--dir: not a directory: ${host}` : code === 'ENOENT' ? `--dir: no such directory: ${host}` : `--dir: cannot open ${host} (${code ?? 'error'})`, { code: code === 'ENOTDIR' ? 'INVALID' : codeOfHostError(e), cause: e });
  }
  if (!procFdWorks(fd)) {
    fs.closeSync(fd);
    throw new LayerboxError(`host directory mounts need /proc/self/fd, which does not work here: cannot mount ${host}`, { code: 'UNSUPPORTED' });
  }
  return fd;
}

/** Where a guest path ends: a directory handle and one name in it (null: that directory itself). */
interface Place {
  dir: number;
  name: string | null;
  /** The walk stopped at the mount root itself. */
  root: boolean;
}

const closeFd = (fd: number) => {
  try {
    fs.closeSync(fd);
  } catch {
    // Already closed: nothing to release.
  }
};
const owned = new FinalizationRegistry<number>(closeFd);

/**
 * A host directory mounted into a guest (`--dir HOST::GUEST`), confined to
 * that directory the way cap-std confines a `Dir`: the walk holds a
 * descriptor per directory, opened one component at a time without following
 * it; every call reaches the host as one name inside a held directory, whose
 * last component the kernel never follows; `..` pops a held descriptor and so
 * never climbs above the mount; symlinks are followed here (an absolute
 * target means the mount's root) and a guest may not create one with an
 * absolute target. No path string is resolved twice, so a directory swapped
 * for a symlink between two calls (by another guest or a host process)
 * cannot lead out. Linux only (it needs /proc/self/fd).
 */
export class HostFs implements GuestFs {
  version = 0;
  readonly root: string;
  private rootFd: number;
  private own: boolean;
  /** Files the guest has open: closed with the mount, so a guest that exits without closing leaks no descriptor. */
  private files = new Set<HostFile>();

  /** `fd`: an open handle on `root` (see openMountRoot) that the caller keeps and closes; otherwise one is opened and owned. */
  constructor(root: string, fd?: number) {
    this.root = root;
    this.own = fd === undefined;
    this.rootFd = fd ?? openMountRoot(root);
    if (this.own) owned.register(this, this.rootFd, this);
  }

  /** Closes the files still open and the mount's own handle; later calls fail with EBADF. */
  close(): void {
    for (const f of this.files) f.close();
    if (!this.own || this.rootFd < 0) return;
    owned.unregister(this);
    closeFd(this.rootFd);
    this.rootFd = -1;
  }

  /**
   * Walks a guest path and runs `f` on where it ends; every descriptor the
   * walk opened is closed when `f` returns or throws. The last component is
   * followed only if `follow` (or the path ends in `/`).
   */
  private walk<T>(path: string, follow: boolean, f: (p: Place) => T): T {
    if (this.rootFd < 0) throw new FsError(Errno.BADF, 'the mount is closed');
    if (path.includes('\0')) throw new FsError(Errno.INVAL, 'path contains a NUL byte');
    if (Buffer.byteLength(path) > PATH_MAX) throw new FsError(Errno.NAMETOOLONG, 'path too long');
    const stack = [this.rootFd];
    try {
      return f(this.resolve(path, follow, stack));
    } finally {
      for (let i = 1; i < stack.length; i++) closeFd(stack[i]!);
    }
  }

  private resolve(path: string, follow: boolean, stack: number[]): Place {
    const rest = path.split('/').reverse();
    const trailingSlash = path.endsWith('/');
    let links = 0;
    const top = () => stack[stack.length - 1]!;
    const expand = (target: string) => {
      if (++links > MAX_SYMLINKS) throw new FsError(Errno.LOOP, path);
      if (target.startsWith('/')) while (stack.length > 1) closeFd(stack.pop()!);
      rest.push(...target.split('/').reverse());
    };
    while (rest.length) {
      const c = rest.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (stack.length > 1) closeFd(stack.pop()!);
        continue;
      }
      if (Buffer.byteLength(c) > NAME_MAX) throw new FsError(Errno.NAMETOOLONG, c.slice(0, 40));
      const last = !rest.some((x) => x !== '' && x !== '.');
      if (last) {
        if (!follow && !trailingSlash) return { dir: top(), name: c, root: false };
        let st: fs.Stats | undefined;
        try {
          st = fs.lstatSync(at(top(), c));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { dir: top(), name: c, root: false };
          translate(e, c);
        }
        if (st.isSymbolicLink()) {
          expand(this.linkAt(top(), c) ?? c);
          continue;
        }
        if (trailingSlash && !st.isDirectory()) throw new FsError(Errno.NOTDIR, path);
        return { dir: top(), name: c, root: false };
      }
      let fd: number;
      try {
        fd = fs.openSync(at(top(), c), DIR_HANDLE);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTDIR' && code !== 'ELOOP') translate(e, c);
        // A symlink (O_NOFOLLOW refused it) or something else that is no directory.
        const target = this.linkAt(top(), c);
        if (target === null) throw new FsError(Errno.NOTDIR, c);
        expand(target);
        continue;
      }
      stack.push(fd);
      if (stack.length > MAX_DEPTH) throw new FsError(Errno.NAMETOOLONG, 'path too deep');
    }
    return { dir: top(), name: null, root: stack.length === 1 };
  }

  /** The target of the symlink `name` in `dir`, or null when it is no symlink (any more). */
  private linkAt(dir: number, name: string): string | null {
    try {
      return fs.readlinkSync(at(dir, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EINVAL') return null;
      return translate(e, name);
    }
  }

  private run<T>(path: string, follow: boolean, f: (p: Place) => T): T {
    try {
      return this.walk(path, follow, f);
    } catch (e) {
      return translate(e, path);
    }
  }

  stat(path: string, follow = true): Stat {
    return this.run(path, follow, (p) => statOf(p.name === null ? fs.statSync(at(p.dir), { bigint: true }) : fs.lstatSync(at(p.dir, p.name), { bigint: true })));
  }

  tryStat(path: string, follow = true): Stat | null {
    try {
      return this.stat(path, follow);
    } catch (e) {
      if (e instanceof FsError && e.errno === Errno.NOENT) return null;
      throw e;
    }
  }

  readdir(path: string): DirEntry[] {
    return this.run(path, true, (p) => {
      const dir = p.name === null ? p.dir : fs.openSync(at(p.dir, p.name), DIR_HANDLE);
      try {
        const out: DirEntry[] = [];
        for (const name of fs.readdirSync(at(dir)).sort()) {
          // An entry removed since the listing is simply not there.
          const st = fs.lstatSync(at(dir, name), { bigint: true, throwIfNoEntry: false });
          if (st) out.push({ name, type: statOf(st).type, ino: Number(st.ino) });
        }
        return out;
      } finally {
        if (dir !== p.dir) closeFd(dir);
      }
    });
  }

  open(path: string, o: OpenOptions = {}): GuestFile {
    return this.run(path, o.follow ?? true, (p) => {
      if (p.name === null) throw new FsError(Errno.ISDIR, path);
      // O_NOFOLLOW: a name swapped for a symlink since the walk is refused (ELOOP), not followed.
      // O_NONBLOCK: a FIFO or device opens at once instead of waiting forever for a peer.
      let flags = C.O_RDWR | C.O_NOFOLLOW | C.O_NONBLOCK;
      if (o.create) flags |= C.O_CREAT;
      if (o.exclusive) flags |= C.O_EXCL;
      if (o.truncate) flags |= C.O_TRUNC;
      const name = at(p.dir, p.name);
      let fd: number;
      try {
        fd = fs.openSync(name, flags, o.mode ?? 0o644);
      } catch (e) {
        // A read-only host file still opens for reading.
        if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
        fd = fs.openSync(name, (flags & ~C.O_RDWR) | C.O_RDONLY);
      }
      if (o.create) this.version++;
      const file = new HostFile(fd, path, (f) => this.files.delete(f));
      this.files.add(file);
      return file;
    });
  }

  private change(path: string, follow: boolean, f: (p: Place) => void): void {
    this.run(path, follow, f);
    this.version++;
  }

  mkdir(path: string, mode = 0o755): void {
    this.change(path, false, (p) => {
      if (p.name === null) throw new FsError(Errno.EXIST, path);
      fs.mkdirSync(at(p.dir, p.name), { mode });
    });
  }
  rmdir(path: string): void {
    this.change(path, false, (p) => {
      if (p.name === null) throw new FsError(p.root ? Errno.BUSY : Errno.INVAL, 'cannot remove the mount root or ..');
      fs.rmdirSync(at(p.dir, p.name));
    });
  }
  unlink(path: string): void {
    this.change(path, false, (p) => {
      if (p.name === null) throw new FsError(Errno.ISDIR, path);
      const name = at(p.dir, p.name);
      if (fs.lstatSync(name).isDirectory()) throw new FsError(Errno.ISDIR, path);
      fs.unlinkSync(name);
    });
  }
  rename(from: string, to: string): void {
    this.change(from, false, (a) =>
      this.walk(to, false, (b) => {
        if (a.name === null || b.name === null) throw new FsError(a.root || b.root ? Errno.BUSY : Errno.INVAL, 'cannot rename the mount root or ..');
        fs.renameSync(at(a.dir, a.name), at(b.dir, b.name));
      }),
    );
  }
  symlink(target: string, path: string): void {
    // As cap-std and wasmtime: an absolute target would name the host's root once outside the sandbox.
    if (target.startsWith('/')) throw new FsError(Errno.PERM, `absolute symlink target: ${target}`);
    this.change(path, false, (p) => {
      if (p.name === null) throw new FsError(Errno.EXIST, path);
      fs.symlinkSync(target, at(p.dir, p.name));
    });
  }
  readlink(path: string): string {
    return this.run(path, false, (p) => {
      if (p.name === null) throw new FsError(Errno.INVAL, path);
      return fs.readlinkSync(at(p.dir, p.name));
    });
  }
  link(from: string, to: string, followFrom = false): void {
    this.change(to, false, (b) =>
      this.walk(from, followFrom, (a) => {
        if (a.name === null) throw new FsError(Errno.PERM, from);
        if (b.name === null) throw new FsError(Errno.EXIST, to);
        const src = at(a.dir, a.name);
        if (fs.lstatSync(src).isDirectory()) throw new FsError(Errno.PERM, from);
        // link(2) does not follow `src`: had it become a symlink since the walk, the link names the symlink.
        fs.linkSync(src, at(b.dir, b.name));
      }),
    );
  }
  utimes(path: string, atime: bigint | undefined, mtime: bigint | undefined, follow = true): void {
    this.run(path, follow, (p) => {
      if (p.name === null) {
        const st = fs.statSync(at(p.dir), { bigint: true });
        fs.utimesSync(at(p.dir), toSec(atime, st.atimeNs), toSec(mtime, st.mtimeNs));
        return;
      }
      // The walk followed what it had to; the last name is never followed here.
      const name = at(p.dir, p.name);
      const st = fs.lstatSync(name, { bigint: true });
      fs.lutimesSync(name, toSec(atime, st.atimeNs), toSec(mtime, st.mtimeNs));
    });
  }
}

/** An open host file (positional reads and writes on one descriptor). */
class HostFile implements GuestFile {
  constructor(private fd: number, private path: string, private onClose: (f: HostFile) => void) {}
  get size(): number {
    return this.run(() => fs.fstatSync(this.fd).size);
  }
  private run<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      return translate(e, this.path);
    }
  }
  read(offset: number, length: number): Uint8Array {
    return this.run(() => {
      const buf = Buffer.allocUnsafe(length);
      let n = 0;
      while (n < length) {
        const r = fs.readSync(this.fd, buf, n, length - n, offset + n);
        if (!r) break;
        n += r;
      }
      return new Uint8Array(buf.buffer, buf.byteOffset, n);
    });
  }
  write(offset: number, data: Uint8Array): void {
    this.run(() => {
      for (let n = 0; n < data.length;) n += fs.writeSync(this.fd, data, n, data.length - n, offset + n);
    });
  }
  truncate(size: number): void {
    this.run(() => fs.ftruncateSync(this.fd, size));
  }
  sync(): void {
    this.run(() => fs.fsyncSync(this.fd));
  }
  stat(): Stat {
    return this.run(() => statOf(fs.fstatSync(this.fd, { bigint: true })));
  }
  utimes(atime: bigint | undefined, mtime: bigint | undefined): void {
    this.run(() => {
      const st = fs.fstatSync(this.fd, { bigint: true });
      fs.futimesSync(this.fd, toSec(atime, st.atimeNs), toSec(mtime, st.mtimeNs));
    });
  }
  close(): void {
    if (this.fd < 0) return;
    closeFd(this.fd);
    this.fd = -1;
    this.onClose(this);
  }
}
