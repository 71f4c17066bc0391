import { Errno, FsError } from '../errno.js';
import { fromUtf8, utf8 } from '../text.js';
import { CLOCK, EVENTTYPE, GUEST_PATH_MAX, IO_CHUNK, MAX_FDS, SUBCLOCKFLAGS_ABSTIME } from './defs.js';
import { Dirent, Fd, Fdstat, Filestat } from './fd.js';

/** Reads into guest memory, offered by fds that can (FileFd over the overlay); null means "use fd_read". */
interface DirectReads {
  fd_read_into?(dest: Uint8Array): { ret: number; n: number } | null;
  fd_pread_into?(dest: Uint8Array, offset: bigint): { ret: number; n: number } | null;
  /** True when the fd is done with the bytes it is given once fd_write/fd_pwrite returns: it is handed a view of guest memory, not a copy. */
  readonly writesCopied?: boolean;
}

/** Thrown by proc_exit: unwinds the guest and carries its exit code. */
export class WasiExit extends Error {
  constructor(readonly code: number) {
    super(`exit with code ${code}`);
    this.name = 'WasiExit';
  }
}

/**
 * Thrown inside an import when the guest names memory it does not have; the
 * import returns EFAULT. One instance: it is control flow, not a report.
 */
class GuestFault extends Error {}
const FAULT = new GuestFault('EFAULT');

/** Host services the WASI layer needs; passed in so tests and hosts can swap them. */
export interface WasiEnv {
  /** Wall clock, ns since the epoch. */
  realtime(): bigint;
  /** Monotonic clock, ns. */
  monotonic(): bigint;
  /** Blocks the calling thread for ns nanoseconds. */
  sleep(ns: bigint): void;
  random(buf: Uint8Array): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export const defaultWasiEnv: WasiEnv = {
  realtime: () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
  monotonic: () => BigInt(Math.round(performance.now() * 1e6)),
  sleep: (ns) => {
    if (ns > 0n) Atomics.wait(sleeper, 0, 0, Number(ns) / 1e6);
  },
  random: (buf) => {
    for (let i = 0; i < buf.length; i += 65536) crypto.getRandomValues(buf.subarray(i, Math.min(buf.length, i + 65536)));
  },
};

export interface WasiOptions {
  args?: string[];
  /** `KEY=value` strings. */
  env?: string[];
  /** fd table: 0-2 stdio, then preopens. Shim fds may be mixed in. */
  fds: (Fd | undefined)[];
  wasiEnv?: WasiEnv;
  /** Called for every syscall (LAYERBOX_TRACE): name, arguments, errno. */
  trace?: (name: string, args: unknown[], result: unknown) => void;
  /** Most fds open at once (default MAX_FDS); past it path_open fails with EMFILE. */
  maxFds?: number;
  /**
   * Called with the import's name and the exception when a call fails with
   * something that is not an FsError (a bug, or a host API failing in a way
   * the filesystem did not turn into an errno): the guest gets EIO and keeps
   * running, so this is where the host learns why. What it throws is ignored.
   */
  onHostError?: (call: string, error: unknown) => void;
}

interface Instance {
  exports: Record<string, unknown>;
}

/**
 * A wasi_snapshot_preview1 host: all 46 functions over an fd table. Exposes
 * `wasiImport`, `start(instance)` and `initialize(instance)` like node:wasi
 * and browser_wasi_shim, so glue such as @ruby/wasm-wasi accepts it.
 *
 * Every pointer, length and count from the guest is an unsigned 32-bit
 * number, and every range of guest memory is checked against the memory's
 * current size before anything else happens: out of bounds is EFAULT, and a
 * call that fails so has had no effect. No import throws into the guest
 * except proc_exit: an unexpected host error is EIO.
 */
export class WasiHost {
  readonly args: string[];
  readonly env: string[];
  readonly fds: (Fd | undefined)[];
  readonly wasiImport: Record<string, (...a: any[]) => number | void>;
  private memory: { buffer: ArrayBuffer } | null = null;
  private readonly e: WasiEnv;
  private readonly maxFds: number;
  /** Free slots (>= 3) below fds.length, as a binary min-heap: the lowest is reused first, as POSIX does. */
  private readonly free: number[] = [];

  constructor(o: WasiOptions) {
    this.args = o.args ?? [];
    this.env = o.env ?? [];
    this.fds = o.fds;
    this.e = o.wasiEnv ?? defaultWasiEnv;
    this.maxFds = Math.max(o.maxFds ?? MAX_FDS, this.fds.length);
    for (let i = 3; i < this.fds.length; i++) if (this.fds[i] === undefined) this.release(i);
    const imports = this.imports();
    const trace = o.trace;
    const onHostError = o.onHostError;
    const u = (x: unknown) => (typeof x === 'number' ? x >>> 0 : x);
    for (const [k, f] of Object.entries(imports)) {
      // proc_exit's code is the guest's own int; everything else is unsigned.
      const unsigned = k !== 'proc_exit';
      /** What a failed call returns: never a trap for the guest (its memory is its own fault, the rest the host's: EIO). */
      const failed = (x: unknown): number => {
        if (x instanceof WasiExit) throw x;
        if (x !== FAULT && !(x instanceof FsError) && onHostError) {
          try {
            onHostError(k, x);
          } catch {
            /* the report must not become the guest's failure */
          }
        }
        return x === FAULT ? Errno.FAULT : x instanceof FsError ? x.errno : Errno.IO;
      };
      imports[k] = trace
        ? (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f5?: unknown, g?: unknown, h?: unknown, i?: unknown) => {
            if (unsigned) (a = u(a)), (b = u(b)), (c = u(c)), (d = u(d)), (e = u(e)), (f5 = u(f5)), (g = u(g)), (h = u(h)), (i = u(i));
            let r: number | void = undefined;
            try {
              r = f(a, b, c, d, e, f5, g, h, i);
            } catch (x) {
              r = failed(x);
            } finally {
              const args = [a, b, c, d, e, f5, g, h, i];
              while (args.length && args[args.length - 1] === undefined) args.pop();
              trace(k, args, r);
            }
            return r;
          }
        : // Fixed parameters, not a rest array: this runs on every syscall. No import has more than 9.
          (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f5?: unknown, g?: unknown, h?: unknown, i?: unknown) => {
            if (unsigned) (a = u(a)), (b = u(b)), (c = u(c)), (d = u(d)), (e = u(e)), (f5 = u(f5)), (g = u(g)), (h = u(h)), (i = u(i));
            try {
              return f(a, b, c, d, e, f5, g, h, i);
            } catch (x) {
              return failed(x);
            }
          };
    }
    this.wasiImport = imports;
  }

  /** Runs a command module; returns its exit code (0 when _start returns). Traps are thrown. */
  start(instance: Instance): number {
    this.memory = instance.exports.memory as { buffer: ArrayBuffer };
    try {
      (instance.exports._start as () => void)();
      return 0;
    } catch (e) {
      if (e instanceof WasiExit) return e.code;
      throw e;
    }
  }

  /** Prepares a reactor module (calls _initialize if it has one). */
  initialize(instance: Instance): void {
    this.memory = instance.exports.memory as { buffer: ArrayBuffer };
    const init = instance.exports._initialize as (() => void) | undefined;
    init?.();
  }

  // Guest memory. The buffer is read afresh on every access: memory.grow replaces it.

  private buf: ArrayBuffer | null = null;
  private dv: DataView | null = null;
  /** Throws EFAULT unless [ptr, ptr + len) is inside guest memory (both u32: the sum is exact). */
  private need(ptr: number, len: number): void {
    if (ptr + len > this.memory!.buffer.byteLength) throw FAULT;
  }
  /** A view of the current memory (kept until memory.grow replaces the buffer). */
  private view(): DataView {
    const b = this.memory!.buffer;
    if (b !== this.buf || this.dv!.byteLength !== b.byteLength) {
      this.buf = b;
      this.dv = new DataView(b);
    }
    return this.dv!;
  }
  /** The guest's bytes [ptr, ptr + len), checked; a view, not a copy. */
  private bytes(ptr: number, len: number): Uint8Array {
    this.need(ptr, len);
    return new Uint8Array(this.memory!.buffer, ptr, len);
  }
  private setU32(ptr: number, value: number): void {
    this.need(ptr, 4);
    this.view().setUint32(ptr, value, true);
  }
  private setU64(ptr: number, value: bigint): void {
    this.need(ptr, 8);
    this.view().setBigUint64(ptr, BigInt.asUintN(64, value), true);
  }
  /** A path from the guest; a length past GUEST_PATH_MAX is refused before anything is copied. */
  private str(ptr: number, len: number): string {
    this.need(ptr, len);
    if (len > GUEST_PATH_MAX) throw new FsError(Errno.NAMETOOLONG, 'path too long');
    return fromUtf8(this.bytes(ptr, len).slice());
  }
  /** Checks an iovec array and every buffer it names; nothing is allocated for it (the count is the guest's). */
  private checkIovs(ptr: number, count: number): void {
    this.need(ptr, count * 8);
    const v = this.view();
    for (let i = 0; i < count; i++) this.need(v.getUint32(ptr + i * 8, true), v.getUint32(ptr + i * 8 + 4, true));
  }
  private iov(ptr: number, i: number): [number, number] {
    const v = this.view();
    return [v.getUint32(ptr + i * 8, true), v.getUint32(ptr + i * 8 + 4, true)];
  }

  private writeFilestat(ptr: number, s: Filestat): void {
    const v = this.view();
    v.setBigUint64(ptr, BigInt.asUintN(64, BigInt(s.dev)), true);
    v.setBigUint64(ptr + 8, BigInt.asUintN(64, BigInt(s.ino)), true);
    v.setUint8(ptr + 16, s.filetype);
    v.setBigUint64(ptr + 24, BigInt.asUintN(64, BigInt(s.nlink)), true);
    v.setBigUint64(ptr + 32, BigInt.asUintN(64, BigInt(s.size)), true);
    v.setBigUint64(ptr + 40, BigInt.asUintN(64, BigInt(s.atim)), true);
    v.setBigUint64(ptr + 48, BigInt.asUintN(64, BigInt(s.mtim)), true);
    v.setBigUint64(ptr + 56, BigInt.asUintN(64, BigInt(s.ctim)), true);
  }

  private writeFdstat(ptr: number, s: Fdstat): void {
    const v = this.view();
    v.setUint8(ptr, s.fs_filetype);
    v.setUint16(ptr + 2, s.fs_flags, true);
    v.setBigUint64(ptr + 8, BigInt.asUintN(64, BigInt(s.fs_rights_base)), true);
    v.setBigUint64(ptr + 16, BigInt.asUintN(64, BigInt(s.fs_rights_inherited)), true);
  }

  // The fd table: slots 0-2 are stdio and are not handed out again once closed
  // (only fd_renumber fills them); above them the lowest free slot is reused.

  /** Whether allocate() has room. */
  private canAllocate(): boolean {
    return this.free.length > 0 || this.fds.length < this.maxFds;
  }

  /** Puts an fd in the lowest free slot; O(log n). The caller checked canAllocate(). */
  private allocate(fd: Fd): number {
    while (this.free.length) {
      const i = this.popFree();
      // A slot refilled from outside (the table is public) is skipped.
      if (this.fds[i] === undefined) {
        this.fds[i] = fd;
        return i;
      }
    }
    this.fds.push(fd);
    return this.fds.length - 1;
  }

  /** Marks slot i free (it must be undefined now). */
  private release(i: number): void {
    if (i < 3) return;
    const h = this.free;
    h.push(i);
    for (let c = h.length - 1; c > 0; ) {
      const p = (c - 1) >> 1;
      if (h[p]! <= h[c]!) break;
      [h[p], h[c]] = [h[c]!, h[p]!];
      c = p;
    }
  }

  private popFree(): number {
    const h = this.free;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      for (let p = 0; ; ) {
        const l = 2 * p + 1, r = l + 1;
        let m = p;
        if (l < h.length && h[l]! < h[m]!) m = l;
        if (r < h.length && h[r]! < h[m]!) m = r;
        if (m === p) break;
        [h[p], h[m]] = [h[m]!, h[p]!];
        p = m;
      }
    }
    return top;
  }

  private imports(): Record<string, (...a: any[]) => number | void> {
    const self = this;
    const fdOf = (fd: number): Fd | undefined => self.fds[fd];
    const encoded = (list: string[]) => list.map((s) => utf8(s));
    const listSizes = (list: string[], countPtr: number, sizePtr: number) => {
      self.need(countPtr, 4);
      self.need(sizePtr, 4);
      self.setU32(countPtr, list.length);
      self.setU32(sizePtr, encoded(list).reduce((n, s) => n + s.length + 1, 0));
      return Errno.SUCCESS;
    };
    const listGet = (list: string[], ptrs: number, buf: number) => {
      const all = encoded(list);
      self.need(ptrs, all.length * 4);
      self.need(buf, all.reduce((n, s) => n + s.length + 1, 0));
      const v = self.view();
      for (const e of all) {
        v.setUint32(ptrs, buf, true);
        ptrs += 4;
        const b = self.bytes(buf, e.length + 1);
        b.set(e);
        b[e.length] = 0;
        buf += e.length + 1;
      }
      return Errno.SUCCESS;
    };
    const clockNow = (id: number): bigint | null => {
      switch (id) {
        case CLOCK.REALTIME:
          return self.e.realtime();
        case CLOCK.MONOTONIC:
        case CLOCK.PROCESS_CPUTIME_ID:
        case CLOCK.THREAD_CPUTIME_ID:
          return self.e.monotonic();
        default:
          return null;
      }
    };
    /**
     * The reads of fd_read/fd_pread: every buffer checked first, then filled in
     * turn (straight into guest memory when the fd can, else in chunks of at
     * most IO_CHUNK so a huge buffer allocates nothing huge on the host).
     */
    const readv = (f: Fd, iovs: number, count: number, nPtr: number, offset: bigint | null) => {
      self.checkIovs(iovs, count);
      self.need(nPtr, 4);
      if (offset !== null && offset < 0n) return Errno.INVAL;
      const d = f as DirectReads;
      let n = 0;
      outer: for (let i = 0; i < count; i++) {
        const [ptr, len] = self.iov(iovs, i);
        let done = 0;
        do {
          // n is reported as a u32: a read never goes past 4 GiB - 1 in total.
          const want = Math.min(len - done, IO_CHUNK, 0xffffffff - n);
          if (want === 0 && len !== 0) break outer;
          const dest = self.bytes(ptr + done, want);
          const direct = offset === null ? d.fd_read_into?.(dest) : d.fd_pread_into?.(dest, offset);
          let ret: number, got: number;
          if (direct) ({ ret, n: got } = direct);
          else {
            const r = offset === null ? f.fd_read(want) : f.fd_pread(want, offset);
            ret = r.ret;
            got = Math.min(r.data.length, want);
            if (ret === Errno.SUCCESS) self.bytes(ptr + done, got).set(r.data.subarray(0, got));
          }
          if (ret !== Errno.SUCCESS) {
            if (n > 0) break outer;
            return ret;
          }
          n += got;
          done += got;
          if (offset !== null) offset += BigInt(got);
          if (got < want) break outer;
        } while (done < len);
      }
      self.setU32(nPtr, n);
      return Errno.SUCCESS;
    };
    /** The writes of fd_write/fd_pwrite: every buffer checked first, then written in chunks of at most IO_CHUNK. */
    const writev = (f: Fd, iovs: number, count: number, nPtr: number, offset: bigint | null) => {
      self.checkIovs(iovs, count);
      self.need(nPtr, 4);
      if (offset !== null && offset < 0n) return Errno.INVAL;
      let n = 0;
      const view = (f as DirectReads).writesCopied === true;
      outer: for (let i = 0; i < count; i++) {
        const [ptr, len] = self.iov(iovs, i);
        if (len === 0 && offset === null) continue;
        let done = 0;
        do {
          const want = Math.min(len - done, IO_CHUNK, 0xffffffff - n);
          if (want === 0 && len !== 0) break outer;
          // A copy unless the fd copies itself: an fd may keep what it is given, and guest memory changes.
          const data = view ? self.bytes(ptr + done, want) : self.bytes(ptr + done, want).slice();
          const { ret, nwritten } = offset === null ? f.fd_write(data) : f.fd_pwrite(data, offset);
          if (ret !== Errno.SUCCESS) {
            if (n > 0) break outer;
            return ret;
          }
          const put = Math.min(nwritten, want);
          n += put;
          done += put;
          if (offset !== null) offset += BigInt(put);
          if (put < want) break outer;
        } while (done < len);
      }
      self.setU32(nPtr, n);
      return Errno.SUCCESS;
    };
    return {
      args_get: (argv: number, buf: number) => listGet(self.args, argv, buf),
      args_sizes_get: (c: number, s: number) => listSizes(self.args, c, s),
      environ_get: (envp: number, buf: number) => listGet(self.env, envp, buf),
      environ_sizes_get: (c: number, s: number) => listSizes(self.env, c, s),
      clock_res_get(id: number, ptr: number) {
        self.need(ptr, 8);
        if (clockNow(id) === null) return Errno.INVAL;
        self.setU64(ptr, 1000n);
        return Errno.SUCCESS;
      },
      clock_time_get(id: number, _precision: bigint, ptr: number) {
        self.need(ptr, 8);
        const t = clockNow(id);
        if (t === null) return Errno.INVAL;
        self.setU64(ptr, t);
        return Errno.SUCCESS;
      },
      fd_advise(fd: number, offset: bigint, len: bigint, advice: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        if (advice > 5 || offset < 0n || len < 0n) return Errno.INVAL;
        return f.fd_advise(offset, len, advice);
      },
      fd_allocate(fd: number, offset: bigint, len: bigint) {
        const f = fdOf(fd);
        return f ? f.fd_allocate(offset, len) : Errno.BADF;
      },
      fd_close(fd: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        const r = f.fd_close();
        self.fds[fd] = undefined;
        self.release(fd);
        return r;
      },
      fd_datasync(fd: number) {
        const f = fdOf(fd);
        return f ? f.fd_sync() : Errno.BADF;
      },
      fd_fdstat_get(fd: number, ptr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(ptr, 24);
        const { ret, fdstat } = f.fd_fdstat_get();
        if (fdstat) self.writeFdstat(ptr, fdstat);
        return ret;
      },
      fd_fdstat_set_flags(fd: number, flags: number) {
        const f = fdOf(fd);
        return f ? f.fd_fdstat_set_flags(flags) : Errno.BADF;
      },
      fd_fdstat_set_rights(fd: number, base: bigint, inheriting: bigint) {
        const f = fdOf(fd);
        return f ? f.fd_fdstat_set_rights(base, inheriting) : Errno.BADF;
      },
      fd_filestat_get(fd: number, ptr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(ptr, 64);
        const { ret, filestat } = f.fd_filestat_get();
        if (filestat) self.writeFilestat(ptr, filestat);
        return ret;
      },
      fd_filestat_set_size(fd: number, size: bigint) {
        const f = fdOf(fd);
        return f ? f.fd_filestat_set_size(size) : Errno.BADF;
      },
      fd_filestat_set_times(fd: number, atim: bigint, mtim: bigint, flags: number) {
        const f = fdOf(fd);
        return f ? f.fd_filestat_set_times(atim, mtim, flags) : Errno.BADF;
      },
      fd_pread(fd: number, iovs: number, count: number, offset: bigint, nreadPtr: number) {
        const f = fdOf(fd);
        return f ? readv(f, iovs, count, nreadPtr, offset) : Errno.BADF;
      },
      fd_prestat_get(fd: number, ptr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(ptr, 8);
        const { ret, prestat } = f.fd_prestat_get();
        if (!prestat) return ret === Errno.SUCCESS || ret === Errno.NOTSUP ? Errno.BADF : ret;
        const v = self.view();
        v.setUint8(ptr, 0);
        v.setUint32(ptr + 4, prestat.inner.pr_name.length, true);
        return Errno.SUCCESS;
      },
      fd_prestat_dir_name(fd: number, ptr: number, len: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(ptr, len);
        const { prestat } = f.fd_prestat_get();
        if (!prestat) return Errno.BADF;
        const name = prestat.inner.pr_name;
        if (name.length > len) return Errno.NAMETOOLONG;
        self.bytes(ptr, name.length).set(name);
        return Errno.SUCCESS;
      },
      fd_pwrite(fd: number, iovs: number, count: number, offset: bigint, nPtr: number) {
        const f = fdOf(fd);
        return f ? writev(f, iovs, count, nPtr, offset) : Errno.BADF;
      },
      fd_read(fd: number, iovs: number, count: number, nreadPtr: number) {
        const f = fdOf(fd);
        return f ? readv(f, iovs, count, nreadPtr, null) : Errno.BADF;
      },
      fd_readdir(fd: number, buf: number, len: number, cookie: bigint, usedPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(buf, len);
        self.need(usedPtr, 4);
        let used = 0;
        const head = new DataView(new ArrayBuffer(24));
        while (used < len) {
          const { ret, dirent } = f.fd_readdir_single(cookie);
          if (ret !== Errno.SUCCESS) return ret;
          if (!dirent) break;
          const name = (dirent as Dirent).dir_name ?? utf8((dirent as unknown as { name: string }).name);
          head.setBigUint64(0, BigInt.asUintN(64, BigInt(dirent.d_next)), true);
          head.setBigUint64(8, BigInt.asUintN(64, BigInt(dirent.d_ino)), true);
          head.setUint32(16, name.length, true);
          head.setUint8(20, dirent.d_type);
          // A truncated last entry tells libc to call again with a bigger buffer.
          const entry = new Uint8Array(24 + name.length);
          entry.set(new Uint8Array(head.buffer), 0);
          entry.set(name, 24);
          const put = Math.min(len - used, entry.length);
          self.bytes(buf + used, put).set(entry.subarray(0, put));
          used += put;
          cookie = BigInt(dirent.d_next);
        }
        self.setU32(usedPtr, used);
        return Errno.SUCCESS;
      },
      fd_renumber(from: number, to: number) {
        const f = fdOf(from);
        const t = fdOf(to);
        if (!f || !t) return Errno.BADF;
        if (from === to) return Errno.SUCCESS;
        t.fd_close();
        self.fds[to] = f;
        self.fds[from] = undefined;
        self.release(from);
        return Errno.SUCCESS;
      },
      fd_seek(fd: number, offset: bigint, whence: number, outPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(outPtr, 8);
        const { ret, offset: at } = f.fd_seek(offset, whence);
        if (ret === Errno.SUCCESS) self.setU64(outPtr, at);
        return ret;
      },
      fd_sync(fd: number) {
        const f = fdOf(fd);
        return f ? f.fd_sync() : Errno.BADF;
      },
      fd_tell(fd: number, outPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(outPtr, 8);
        const { ret, offset } = f.fd_tell();
        if (ret === Errno.SUCCESS) self.setU64(outPtr, offset);
        return ret;
      },
      fd_write(fd: number, iovs: number, count: number, nPtr: number) {
        const f = fdOf(fd);
        return f ? writev(f, iovs, count, nPtr, null) : Errno.BADF;
      },
      path_create_directory(fd: number, p: number, l: number) {
        const f = fdOf(fd);
        return f ? f.path_create_directory(self.str(p, l)) : Errno.BADF;
      },
      path_filestat_get(fd: number, flags: number, p: number, l: number, ptr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(ptr, 64);
        const { ret, filestat } = f.path_filestat_get(flags, self.str(p, l));
        if (filestat) self.writeFilestat(ptr, filestat);
        return ret;
      },
      path_filestat_set_times(fd: number, flags: number, p: number, l: number, atim: bigint, mtim: bigint, fst: number) {
        const f = fdOf(fd);
        return f ? f.path_filestat_set_times(flags, self.str(p, l), atim, mtim, fst) : Errno.BADF;
      },
      path_link(oldFd: number, oldFlags: number, op: number, ol: number, newFd: number, np: number, nl: number) {
        const f = fdOf(oldFd);
        const t = fdOf(newFd);
        if (!f || !t) return Errno.BADF;
        const from = self.str(op, ol);
        const to = self.str(np, nl);
        const ours = f as Fd & { path_link_to?: (fl: number, a: string, to: Fd, b: string) => number };
        if (ours.path_link_to) return ours.path_link_to(oldFlags, from, t, to);
        // browser_wasi_shim's protocol: look the inode up, link it at the target.
        const shimFrom = f as unknown as { path_lookup?: (p: string, fl: number) => { ret: number; inode_obj: unknown } };
        const shimTo = t as unknown as { path_link?: (p: string, inode: unknown, allowDir: boolean) => number };
        if (!shimFrom.path_lookup || !shimTo.path_link) return Errno.NOTSUP;
        const { ret, inode_obj } = shimFrom.path_lookup(from, oldFlags);
        return inode_obj ? shimTo.path_link(to, inode_obj, false) : ret;
      },
      path_open(fd: number, dirflags: number, p: number, l: number, oflags: number, base: bigint, inheriting: bigint, fdflags: number, outPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(outPtr, 4);
        const path = self.str(p, l);
        // Checked before opening: a full table must not leave a created file behind.
        if (!self.canAllocate()) return Errno.MFILE;
        const { ret, fd_obj } = f.path_open(dirflags, path, oflags, base, inheriting, fdflags);
        if (ret !== Errno.SUCCESS || !fd_obj) return ret || Errno.IO;
        self.setU32(outPtr, self.allocate(fd_obj));
        return Errno.SUCCESS;
      },
      path_readlink(fd: number, p: number, l: number, buf: number, bufLen: number, usedPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        self.need(buf, bufLen);
        self.need(usedPtr, 4);
        const { ret, data } = f.path_readlink(self.str(p, l));
        if (data === null) return ret;
        const b = utf8(data).subarray(0, bufLen);
        self.bytes(buf, b.length).set(b);
        self.setU32(usedPtr, b.length);
        return Errno.SUCCESS;
      },
      path_remove_directory(fd: number, p: number, l: number) {
        const f = fdOf(fd);
        return f ? f.path_remove_directory(self.str(p, l)) : Errno.BADF;
      },
      path_rename(fd: number, op: number, ol: number, newFd: number, np: number, nl: number) {
        const f = fdOf(fd);
        const t = fdOf(newFd);
        if (!f || !t) return Errno.BADF;
        const from = self.str(op, ol);
        const to = self.str(np, nl);
        const ours = f as Fd & { path_rename?: (a: string, to: Fd, b: string) => number };
        return ours.path_rename ? ours.path_rename(from, t, to) : Errno.NOTSUP;
      },
      path_symlink(op: number, ol: number, fd: number, np: number, nl: number) {
        const f = fdOf(fd) as (Fd & { path_symlink?: (t: string, p: string) => number }) | undefined;
        if (!f) return Errno.BADF;
        const target = self.str(op, ol);
        const path = self.str(np, nl);
        return f.path_symlink ? f.path_symlink(target, path) : Errno.NOTSUP;
      },
      path_unlink_file(fd: number, p: number, l: number) {
        const f = fdOf(fd);
        return f ? f.path_unlink_file(self.str(p, l)) : Errno.BADF;
      },
      poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) {
        if (nsubs === 0) return Errno.INVAL;
        self.need(inPtr, nsubs * 48);
        self.need(outPtr, nsubs * 32);
        self.need(neventsPtr, 4);
        // The subscriptions are read in place, pass after pass: nothing is
        // allocated per subscription (their count is the guest's).
        const v = self.view();
        const start = self.e.monotonic();
        const nows = new Map<number, bigint | null>();
        /** A clock subscription's deadline on the monotonic clock (null: unknown clock). */
        const deadline = (s: number): bigint | null => {
          const id = v.getUint32(s + 16, true);
          if (!nows.has(id)) nows.set(id, clockNow(id));
          const now = nows.get(id)!;
          if (now === null) return null;
          const timeout = v.getBigUint64(s + 24, true);
          const rel = v.getUint16(s + 40, true) & SUBCLOCKFLAGS_ABSTIME ? timeout - now : timeout;
          return start + (rel > 0n ? rel : 0n);
        };
        let first: bigint | null = null;
        let fdSubs = 0;
        for (let i = 0; i < nsubs; i++) {
          const s = inPtr + i * 48;
          if (v.getUint8(s + 8) !== EVENTTYPE.CLOCK) {
            fdSubs++;
            continue;
          }
          const d = deadline(s);
          if (d === null) return Errno.INVAL;
          if (first === null || d < first) first = d;
        }
        let n = 0;
        const event = (userdata: bigint, error: number, type: number, nbytes: bigint) => {
          const o = outPtr + n++ * 32;
          const w = v;
          w.setBigUint64(o, userdata, true);
          w.setUint16(o + 8, error, true);
          w.setUint8(o + 10, type);
          w.setBigUint64(o + 16, nbytes, true);
          w.setUint16(o + 24, 0, true);
        };
        if (fdSubs) {
          // Files, stdio and directories never block here: fd subscriptions are ready at once.
          for (let i = 0; i < nsubs; i++) {
            const s = inPtr + i * 48;
            const userdata = v.getBigUint64(s, true);
            const type = v.getUint8(s + 8);
            if (type === EVENTTYPE.CLOCK) continue;
            const f = fdOf(v.getUint32(s + 16, true));
            if (!f) event(userdata, Errno.BADF, type, 0n);
            else if (type !== EVENTTYPE.FD_READ && type !== EVENTTYPE.FD_WRITE) event(userdata, Errno.INVAL, type, 0n);
            else event(userdata, Errno.SUCCESS, type, 1n);
          }
        } else {
          const wait = first! - self.e.monotonic();
          if (wait > 0n) self.e.sleep(wait);
          for (let i = 0; i < nsubs; i++) {
            const s = inPtr + i * 48;
            if (deadline(s)! <= first!) event(v.getBigUint64(s, true), Errno.SUCCESS, EVENTTYPE.CLOCK, 0n);
          }
        }
        self.setU32(neventsPtr, n);
        return Errno.SUCCESS;
      },
      proc_exit(code: number) {
        throw new WasiExit(code);
      },
      proc_raise(_sig: number) {
        return Errno.NOSYS;
      },
      sched_yield() {
        return Errno.SUCCESS;
      },
      random_get(buf: number, len: number) {
        self.e.random(self.bytes(buf, len));
        return Errno.SUCCESS;
      },
      sock_accept(fd: number, _flags: number, _out: number) {
        return fdOf(fd) ? Errno.NOTSOCK : Errno.BADF;
      },
      sock_recv(fd: number) {
        return fdOf(fd) ? Errno.NOTSOCK : Errno.BADF;
      },
      sock_send(fd: number) {
        return fdOf(fd) ? Errno.NOTSOCK : Errno.BADF;
      },
      sock_shutdown(fd: number) {
        return fdOf(fd) ? Errno.NOTSOCK : Errno.BADF;
      },
    };
  }
}
