import { Errno } from '../errno.js';
import { utf8 } from '../text.js';

/**
 * Structures passed between the host and fds. Field names follow
 * @bjorn3/browser_wasi_shim so its fds and ours are interchangeable; the
 * host writes them into guest memory itself (at the spec's offsets).
 */
export class Filestat {
  constructor(
    public dev: bigint,
    public ino: bigint,
    public filetype: number,
    public nlink: bigint,
    public size: bigint,
    public atim: bigint,
    public mtim: bigint,
    public ctim: bigint,
  ) {}
}

export class Fdstat {
  constructor(public fs_filetype: number, public fs_flags: number, public fs_rights_base: bigint, public fs_rights_inherited: bigint) {}
}

export class Dirent {
  readonly dir_name: Uint8Array;
  constructor(public d_next: bigint, public d_ino: bigint, name: string, public d_type: number) {
    this.dir_name = utf8(name);
  }
  get d_namlen(): number {
    return this.dir_name.length;
  }
}

export class Prestat {
  readonly tag = 0;
  readonly inner: { pr_name: Uint8Array };
  constructor(name: string) {
    this.inner = { pr_name: utf8(name) };
  }
}

type R<K extends string, T> = { ret: number } & { [P in K]: T };

/**
 * A file descriptor. Every operation answers NOTSUP unless a subclass
 * implements it — the contract of browser_wasi_shim's `Fd`, so shim fds
 * (stdio, a `PreopenDirectory`) can be attached next to ours.
 */
export abstract class Fd {
  fd_advise(_offset: bigint, _len: bigint, _advice: number): number { return Errno.SUCCESS; }
  fd_allocate(_offset: bigint, _len: bigint): number { return Errno.NOTSUP; }
  fd_close(): number { return Errno.SUCCESS; }
  fd_fdstat_get(): R<'fdstat', Fdstat | null> { return { ret: Errno.NOTSUP, fdstat: null }; }
  fd_fdstat_set_flags(_flags: number): number { return Errno.NOTSUP; }
  fd_fdstat_set_rights(_base: bigint, _inheriting: bigint): number { return Errno.NOTSUP; }
  fd_filestat_get(): R<'filestat', Filestat | null> { return { ret: Errno.NOTSUP, filestat: null }; }
  fd_filestat_set_size(_size: bigint): number { return Errno.NOTSUP; }
  fd_filestat_set_times(_atim: bigint, _mtim: bigint, _fst_flags: number): number { return Errno.NOTSUP; }
  fd_pread(_size: number, _offset: bigint): R<'data', Uint8Array> { return { ret: Errno.NOTSUP, data: new Uint8Array() }; }
  fd_prestat_get(): R<'prestat', Prestat | null> { return { ret: Errno.NOTSUP, prestat: null }; }
  fd_pwrite(_data: Uint8Array, _offset: bigint): R<'nwritten', number> { return { ret: Errno.NOTSUP, nwritten: 0 }; }
  fd_read(_size: number): R<'data', Uint8Array> { return { ret: Errno.NOTSUP, data: new Uint8Array() }; }
  fd_readdir_single(_cookie: bigint): R<'dirent', Dirent | null> { return { ret: Errno.NOTSUP, dirent: null }; }
  fd_seek(_offset: bigint, _whence: number): R<'offset', bigint> { return { ret: Errno.NOTSUP, offset: 0n }; }
  fd_sync(): number { return Errno.SUCCESS; }
  fd_tell(): R<'offset', bigint> { return { ret: Errno.NOTSUP, offset: 0n }; }
  fd_write(_data: Uint8Array): R<'nwritten', number> { return { ret: Errno.NOTSUP, nwritten: 0 }; }
  path_create_directory(_path: string): number { return Errno.NOTSUP; }
  path_filestat_get(_flags: number, _path: string): R<'filestat', Filestat | null> { return { ret: Errno.NOTSUP, filestat: null }; }
  path_filestat_set_times(_flags: number, _path: string, _atim: bigint, _mtim: bigint, _fst_flags: number): number { return Errno.NOTSUP; }
  path_open(_dirflags: number, _path: string, _oflags: number, _base: bigint, _inheriting: bigint, _fdflags: number): R<'fd_obj', Fd | null> { return { ret: Errno.NOTDIR, fd_obj: null }; }
  path_readlink(_path: string): R<'data', string | null> { return { ret: Errno.NOTSUP, data: null }; }
  path_remove_directory(_path: string): number { return Errno.NOTSUP; }
  path_unlink_file(_path: string): number { return Errno.NOTSUP; }
}
