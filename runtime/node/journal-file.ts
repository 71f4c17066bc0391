import * as fs from 'node:fs';
import * as path from 'node:path';
import { LayerboxError } from '../../src/errno.js';
import type { JournalLog } from '../../src/store/backend.js';

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

/** fsync a directory so a rename or unlink in it survives a crash. */
function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/**
 * A box's journal in one host file, written with positional writes and made
 * durable with fdatasync. Opened lazily: a box that is only read never
 * creates one. A scratch log (an ephemeral box's) is removed on close.
 */
export class FileJournalLog implements JournalLog {
  private fd: number | null = null;
  private writable = false;
  private bytes = -1;

  constructor(private file: string, private tmpName: () => string, private scratch = false) {}

  /** Opens the file if it exists: a regular file only (anything else planted under its name is damage). */
  private open(write: boolean): number | null {
    if (this.fd !== null && (this.writable || !write)) return this.fd;
    this.closeFd();
    const flags = (write ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDONLY) | fs.constants.O_NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0);
    let fd: number;
    try { fd = fs.openSync(this.file, flags, 0o644); } catch (e) {
      if (errCode(e) === 'ENOENT' && !write) {
        this.bytes = 0;
        return null;
      }
      if (errCode(e) === 'ELOOP') throw new LayerboxError(`box journal ${this.file} is not a regular file`, { code: 'CORRUPT' });
      throw e;
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      fs.closeSync(fd);
      throw new LayerboxError(`box journal ${this.file} is not a regular file`, { code: 'CORRUPT' });
    }
    this.fd = fd;
    this.writable = write;
    this.bytes = st.size;
    return fd;
  }

  private closeFd(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  get size(): number {
    // Asked of the file each time: a checkpoint may have turned the journal into a pack by appending to it.
    if (this.fd !== null) this.bytes = fs.fstatSync(this.fd).size;
    else if (this.bytes < 0) this.open(false);
    return Math.max(0, this.bytes);
  }

  read(offset: number, length: number): Uint8Array {
    const fd = this.open(false);
    // The size known is enough for chunks written before (no fstat per read); past it, the file is asked.
    if (fd === null || (offset + length > this.bytes && offset + length > this.size)) throw new LayerboxError(`box journal ${this.file}: read past its end`, { code: 'CORRUPT' });
    const out = new Uint8Array(length);
    for (let got = 0; got < length;) {
      const n = fs.readSync(fd, out, got, length - got, offset + got);
      if (n === 0) throw new LayerboxError(`box journal ${this.file}: unexpected end of file`, { code: 'CORRUPT' });
      got += n;
    }
    return out;
  }

  append(parts: readonly Uint8Array[], durable: boolean): void {
    const at = this.size;
    const fd = this.open(true)!;
    let total = 0;
    for (const p of parts) total += p.length;
    try {
      // One gathered write; what a short one left (past the system's iovec limit, say) goes part by part.
      let done = parts.length ? fs.writevSync(fd, parts as Uint8Array[], at) : 0;
      let start = 0;
      for (const p of parts) {
        const end = start + p.length;
        while (done < end) done += fs.writeSync(fd, p, done - start, end - done, at + done);
        start = end;
      }
      if (durable) fs.fdatasyncSync(fd);
    } catch (e) {
      // What a failed append left goes, where the disk lets it: the next one starts at the old end anyway.
      try { fs.ftruncateSync(fd, at); } catch { /* the salt and batch numbers keep leftovers out */ }
      this.bytes = at;
      throw e;
    }
    this.bytes = at + total;
  }

  replace(parts: Iterable<Uint8Array>): void {
    const tmp = this.tmpName();
    let total = 0;
    try {
      const fd = fs.openSync(tmp, 'wx', 0o644);
      try {
        for (const p of parts) {
          for (let done = 0; done < p.length;) done += fs.writeSync(fd, p, done, p.length - done, total + done);
          total += p.length;
        }
        fs.fsyncSync(fd);
      } finally { fs.closeSync(fd); }
      fs.renameSync(tmp, this.file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fsyncDir(path.dirname(this.file));
    this.closeFd();
    this.open(true);
    this.bytes = total;
  }

  remove(): void {
    this.closeFd();
    try { fs.unlinkSync(this.file); } catch (e) { if (errCode(e) !== 'ENOENT') throw e; }
    this.bytes = 0;
    if (!this.scratch) fsyncDir(path.dirname(this.file));
  }

  close(): void {
    this.closeFd();
    this.bytes = -1;
    if (this.scratch) fs.rmSync(this.file, { force: true });
  }
}
