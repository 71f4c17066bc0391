import { Errno } from '../errno.js';
import { FDFLAGS, FILETYPE, RIGHTS, STDIO_RIGHTS } from './defs.js';
import { Fd, Fdstat, Filestat } from './fd.js';

/** Shared behaviour of stdin/stdout/stderr: a character device that cannot seek. */
abstract class StreamFd extends Fd {
  flags = 0;
  /** A terminal is a character device (isatty() is true); anything else looks like a pipe, as node:wasi shows pipes. */
  private readonly filetype: number;
  constructor(private rights: bigint, tty: boolean) {
    super();
    this.filetype = tty ? FILETYPE.CHARACTER_DEVICE : FILETYPE.SOCKET_STREAM;
  }
  override fd_fdstat_get() {
    return { ret: Errno.SUCCESS, fdstat: new Fdstat(this.filetype, this.flags, this.rights, 0n) };
  }
  override fd_fdstat_set_flags(flags: number): number {
    this.flags = flags & (FDFLAGS.APPEND | FDFLAGS.NONBLOCK);
    return Errno.SUCCESS;
  }
  override fd_filestat_get() {
    return { ret: Errno.SUCCESS, filestat: new Filestat(0n, 0n, this.filetype, 1n, 0n, 0n, 0n, 0n) };
  }
  override fd_filestat_set_size(_size: bigint): number {
    return Errno.INVAL;
  }
  override fd_filestat_set_times(): number {
    return Errno.SUCCESS;
  }
  override fd_seek(_offset: bigint, _whence: number) {
    return { ret: Errno.SPIPE, offset: 0n };
  }
  override fd_tell() {
    return { ret: Errno.SPIPE, offset: 0n };
  }
  override fd_pread(_size: number, _offset: bigint) {
    return { ret: Errno.SPIPE, data: new Uint8Array() };
  }
  override fd_pwrite(_data: Uint8Array, _offset: bigint) {
    return { ret: Errno.SPIPE, nwritten: 0 };
  }
}

/** stdout/stderr: every write goes to `sink` as it happens. */
export class OutputFd extends StreamFd {
  constructor(private sink: (data: Uint8Array) => void, tty = false) {
    super(STDIO_RIGHTS & ~RIGHTS.FD_READ, tty);
  }
  override fd_read(_size: number) {
    return { ret: Errno.BADF, data: new Uint8Array() };
  }
  override fd_write(data: Uint8Array) {
    this.sink(data);
    return { ret: Errno.SUCCESS, nwritten: data.length };
  }
}

/** stdin: `source(max)` returns up to max bytes, blocking as the host allows; null at end of input. */
export class InputFd extends StreamFd {
  constructor(private source: (max: number) => Uint8Array | null, tty = false) {
    super(STDIO_RIGHTS & ~RIGHTS.FD_WRITE, tty);
  }
  override fd_read(size: number) {
    const data = this.source(size);
    return { ret: Errno.SUCCESS, data: data ?? new Uint8Array() };
  }
  override fd_write(_data: Uint8Array) {
    return { ret: Errno.BADF, nwritten: 0 };
  }
}

/** stdin from bytes given up front. */
export function bytesSource(bytes: Uint8Array): (max: number) => Uint8Array | null {
  let pos = 0;
  return (max) => {
    if (pos >= bytes.length) return null;
    const out = bytes.subarray(pos, Math.min(bytes.length, pos + max));
    pos += out.length;
    return out;
  };
}
