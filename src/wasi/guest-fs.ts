import type { DirEntry, OpenOptions, Stat } from '../overlay/overlay.js';

/** An open regular file as the syscall layer needs it. */
export interface GuestFile {
  readonly size: number;
  /** With `view`, the bytes may be a view the caller copies at once (saves a copy on the read path). */
  read(offset: number, length: number, view?: boolean): Uint8Array;
  /** Optional: reads straight into `dest` (guest memory), returning the byte count. */
  readInto?(offset: number, dest: Uint8Array): number;
  /** `data` may be a view of guest memory, valid only during the call: what is kept must be copied. */
  write(offset: number, data: Uint8Array): void;
  truncate(size: number): void;
  stat(): Stat;
  utimes(atime: bigint | undefined, mtime: bigint | undefined): void;
  /** Releases host resources (host files); overlay handles need none. */
  close?(): void;
  /** Makes this file's data durable where it lives on a host (fsync); box files are made durable by GuestFs.sync. */
  sync?(): void;
}

/**
 * The filesystem under WASI directory fds: the overlay implements it, and so
 * does a confined host directory (runtime/node). Paths are absolute inside
 * this filesystem; errors are thrown as FsError.
 */
export interface GuestFs {
  /** Bumped on every change of names, so directory listings can be cached. */
  readonly version: number;
  stat(path: string, follow?: boolean): Stat;
  /** stat, or null when nothing is there. */
  tryStat(path: string, follow?: boolean): Stat | null;
  readdir(path: string): DirEntry[];
  open(path: string, o?: OpenOptions): GuestFile;
  mkdir(path: string, mode?: number): void;
  rmdir(path: string): void;
  unlink(path: string): void;
  rename(from: string, to: string): void;
  symlink(target: string, path: string): void;
  readlink(path: string): string;
  link(from: string, to: string, followFrom?: boolean): void;
  utimes(path: string, atime: bigint | undefined, mtime: bigint | undefined, follow?: boolean): void;
  /** Makes every change so far durable (fd_sync): a box writes its journal. Throws FsError (ENOSPC, EIO...) when it cannot. */
  sync?(): void;
}
