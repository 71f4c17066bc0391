import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { type DirEntry, type Errno as ErrnoT, FsError, type GuestFile, type GuestFs, type OpenOptions, type Stat, Errno } from '../../src/index.js';

type ErrnoName = keyof typeof ErrnoT;

/** Host errno codes to WASI: the one place host errors are translated. */
const HOST_ERRNO: Record<string, ErrnoName> = {
  ENOENT: 'NOENT', EEXIST: 'EXIST', ENOTDIR: 'NOTDIR', EISDIR: 'ISDIR', ENOTEMPTY: 'NOTEMPTY', EACCES: 'ACCES', EPERM: 'PERM',
  EINVAL: 'INVAL', ELOOP: 'LOOP', ENAMETOOLONG: 'NAMETOOLONG', EXDEV: 'XDEV', ENOSPC: 'NOSPC', EDQUOT: 'DQUOT', EROFS: 'ROFS',
  EBADF: 'BADF', EBUSY: 'BUSY', EMLINK: 'MLINK', EFBIG: 'FBIG', EIO: 'IO', ETXTBSY: 'TXTBSY', ENOTSUP: 'NOTSUP', EOPNOTSUPP: 'NOTSUP',
};

function translate(e: unknown, what: string): never {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && HOST_ERRNO[code]) throw new FsError(Errno[HOST_ERRNO[code]!], `${what}`);
  throw e;
}

function statOf(s: fs.BigIntStats): Stat {
  const type = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'file';
  return { ino: Number(s.ino), type, mode: Number(s.mode & 0o7777n), nlink: Number(s.nlink), size: Number(s.size), uid: Number(s.uid), gid: Number(s.gid), atime: s.atimeNs, mtime: s.mtimeNs, ctime: s.ctimeNs };
}

const toSec = (ns: bigint | undefined, cur: bigint): number => Number(ns ?? cur) / 1e9;

/**
 * A host directory mounted into a guest (`--dir HOST::GUEST`), confined to
 * that directory: the path walk is done here, one component at a time, so
 * `..` and symlinks (absolute targets mean the mount's root) never leave it.
 */
export class HostFs implements GuestFs {
  version = 0;
  readonly root: string;

  constructor(root: string) {
    this.root = fs.realpathSync(root);
  }

  /** Host path for a guest path; the last component is followed only if `follow`. */
  private host(path: string, follow: boolean): { host: string; parts: string[] } {
    if (path.includes('\0')) throw new FsError(Errno.INVAL, 'path contains a NUL byte');
    let parts: string[] = [];
    let rest = path.split('/').reverse();
    let links = 0;
    const trailingSlash = path.endsWith('/');
    while (rest.length) {
      const c = rest.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        parts.pop();
        continue;
      }
      if (Buffer.byteLength(c) > 255) throw new FsError(Errno.NAMETOOLONG, c.slice(0, 40));
      const last = !rest.some((x) => x !== '' && x !== '.');
      const h = nodePath.join(this.root, ...parts, c);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(h);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && last) {
          parts.push(c);
          break;
        }
        translate(e, `/${[...parts, c].join('/')}`);
      }
      if (st!.isSymbolicLink() && (!last || follow || trailingSlash)) {
        if (++links > 40) throw new FsError(Errno.LOOP, path);
        const target = fs.readlinkSync(h);
        if (target.startsWith('/')) parts = [];
        rest.push(...target.split('/').reverse());
        continue;
      }
      if (!last && !st!.isDirectory()) throw new FsError(Errno.NOTDIR, `/${[...parts, c].join('/')}`);
      parts.push(c);
    }
    const host = nodePath.join(this.root, ...parts);
    if (trailingSlash && parts.length) {
      const st = fs.lstatSync(host, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) throw new FsError(Errno.NOTDIR, `${path}`);
    }
    return { host, parts };
  }

  private run<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof FsError) throw e;
      return translate(e, what);
    }
  }

  stat(path: string, follow = true): Stat {
    const { host } = this.host(path, follow);
    return this.run(path, () => statOf(fs.lstatSync(host, { bigint: true })));
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
    const { host } = this.host(path, true);
    return this.run(path, () =>
      fs.readdirSync(host).sort().map((name) => {
        const st = statOf(fs.lstatSync(nodePath.join(host, name), { bigint: true }));
        return { name, type: st.type, ino: st.ino };
      }),
    );
  }

  open(path: string, o: OpenOptions = {}): GuestFile {
    const { host } = this.host(path, o.follow ?? true);
    return this.run(path, () => {
      let flags = fs.constants.O_RDWR;
      if (o.create) flags |= fs.constants.O_CREAT;
      if (o.exclusive) flags |= fs.constants.O_EXCL;
      if (o.truncate) flags |= fs.constants.O_TRUNC;
      let fd: number;
      try {
        fd = fs.openSync(host, flags | fs.constants.O_NOFOLLOW, o.mode ?? 0o644);
      } catch (e) {
        // A read-only host file still opens for reading.
        if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
        fd = fs.openSync(host, (flags & ~fs.constants.O_RDWR) | fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      }
      if (o.create) this.version++;
      return new HostFile(fd, path);
    });
  }

  private change(path: string, f: () => void): void {
    this.run(path, f);
    this.version++;
  }

  mkdir(path: string, mode = 0o755): void {
    const { host } = this.host(path, false);
    this.change(path, () => fs.mkdirSync(host, { mode }));
  }
  rmdir(path: string): void {
    const { host, parts } = this.host(path, false);
    if (!parts.length) throw new FsError(Errno.BUSY, 'cannot remove the mount root');
    this.change(path, () => fs.rmdirSync(host));
  }
  unlink(path: string): void {
    const { host } = this.host(path, false);
    this.change(path, () => {
      if (fs.lstatSync(host).isDirectory()) throw new FsError(Errno.ISDIR, path);
      fs.unlinkSync(host);
    });
  }
  rename(from: string, to: string): void {
    const a = this.host(from, false), b = this.host(to, false);
    if (!a.parts.length || !b.parts.length) throw new FsError(Errno.BUSY, 'cannot rename the mount root');
    this.change(from, () => fs.renameSync(a.host, b.host));
  }
  symlink(target: string, path: string): void {
    const { host } = this.host(path, false);
    this.change(path, () => fs.symlinkSync(target, host));
  }
  readlink(path: string): string {
    const { host } = this.host(path, false);
    return this.run(path, () => fs.readlinkSync(host));
  }
  link(from: string, to: string, followFrom = false): void {
    const a = this.host(from, followFrom), b = this.host(to, false);
    this.change(to, () => {
      if (fs.lstatSync(a.host).isDirectory()) throw new FsError(Errno.PERM, from);
      fs.linkSync(a.host, b.host);
    });
  }
  utimes(path: string, atime: bigint | undefined, mtime: bigint | undefined, follow = true): void {
    const { host } = this.host(path, follow);
    this.run(path, () => {
      const st = fs.lstatSync(host, { bigint: true });
      (follow ? fs.utimesSync : fs.lutimesSync)(host, toSec(atime, st.atimeNs), toSec(mtime, st.mtimeNs));
    });
  }
}

/** An open host file (positional reads and writes on one descriptor). */
class HostFile implements GuestFile {
  constructor(private fd: number, private path: string) {}
  get size(): number {
    return fs.fstatSync(this.fd).size;
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
    fs.closeSync(this.fd);
  }
}
