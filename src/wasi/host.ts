import { Errno } from '../errno.js';
import { fromUtf8, utf8 } from '../text.js';
import { CLOCK, EVENTTYPE, SUBCLOCKFLAGS_ABSTIME } from './defs.js';
import { Dirent, Fd, Fdstat, Filestat } from './fd.js';

/** Reads into guest memory, offered by fds that can (FileFd over the overlay); null means "use fd_read". */
interface DirectReads {
  fd_read_into?(dest: Uint8Array): { ret: number; n: number } | null;
  fd_pread_into?(dest: Uint8Array, offset: bigint): { ret: number; n: number } | null;
}

/** Thrown by proc_exit: unwinds the guest and carries its exit code. */
export class WasiExit extends Error {
  constructor(readonly code: number) {
    super(`exit with code ${code}`);
    this.name = 'WasiExit';
  }
}

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
}

interface Instance {
  exports: Record<string, unknown>;
}

/**
 * A wasi_snapshot_preview1 host: all 46 functions over an fd table. Exposes
 * `wasiImport`, `start(instance)` and `initialize(instance)` like node:wasi
 * and browser_wasi_shim, so glue such as @ruby/wasm-wasi accepts it.
 */
export class WasiHost {
  readonly args: string[];
  readonly env: string[];
  readonly fds: (Fd | undefined)[];
  readonly wasiImport: Record<string, (...a: any[]) => number | void>;
  private memory: { buffer: ArrayBuffer } | null = null;
  private readonly e: WasiEnv;

  constructor(o: WasiOptions) {
    this.args = o.args ?? [];
    this.env = o.env ?? [];
    this.fds = o.fds;
    this.e = o.wasiEnv ?? defaultWasiEnv;
    const imports = this.imports();
    if (o.trace) {
      const trace = o.trace;
      for (const [k, f] of Object.entries(imports)) {
        imports[k] = (...a: unknown[]) => {
          let r: unknown;
          try {
            r = f(...a);
            return r as number;
          } finally {
            trace(k, a, r);
          }
        };
      }
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

  private view(): DataView {
    return new DataView(this.memory!.buffer);
  }
  private bytes(): Uint8Array {
    return new Uint8Array(this.memory!.buffer);
  }
  private str(ptr: number, len: number): string {
    return fromUtf8(this.bytes().slice(ptr, ptr + len));
  }
  /** Reads an iovec array: [ptr, len] pairs. */
  private iovs(ptr: number, count: number): Array<[number, number]> {
    const v = this.view();
    const out: Array<[number, number]> = [];
    for (let i = 0; i < count; i++) out.push([v.getUint32(ptr + i * 8, true), v.getUint32(ptr + i * 8 + 4, true)]);
    return out;
  }

  private writeFilestat(ptr: number, s: Filestat): void {
    const v = this.view();
    v.setBigUint64(ptr, BigInt(s.dev), true);
    v.setBigUint64(ptr + 8, BigInt(s.ino), true);
    v.setUint8(ptr + 16, s.filetype);
    v.setBigUint64(ptr + 24, BigInt(s.nlink), true);
    v.setBigUint64(ptr + 32, BigInt(s.size), true);
    v.setBigUint64(ptr + 40, BigInt(s.atim), true);
    v.setBigUint64(ptr + 48, BigInt(s.mtim), true);
    v.setBigUint64(ptr + 56, BigInt(s.ctim), true);
  }

  private writeFdstat(ptr: number, s: Fdstat): void {
    const v = this.view();
    v.setUint8(ptr, s.fs_filetype);
    v.setUint16(ptr + 2, s.fs_flags, true);
    v.setBigUint64(ptr + 8, BigInt(s.fs_rights_base), true);
    v.setBigUint64(ptr + 16, BigInt(s.fs_rights_inherited), true);
  }

  /** Puts an fd in the lowest free slot (slots of closed fds are reused, as POSIX does). */
  private allocate(fd: Fd): number {
    for (let i = 3; i < this.fds.length; i++) if (this.fds[i] === undefined) {
      this.fds[i] = fd;
      return i;
    }
    this.fds.push(fd);
    return this.fds.length - 1;
  }

  private imports(): Record<string, (...a: any[]) => number | void> {
    const self = this;
    const fdOf = (fd: number): Fd | undefined => self.fds[fd];
    const listSizes = (list: string[], countPtr: number, sizePtr: number) => {
      const v = self.view();
      v.setUint32(countPtr, list.length, true);
      v.setUint32(sizePtr, list.reduce((n, s) => n + utf8(s).length + 1, 0), true);
      return Errno.SUCCESS;
    };
    const listGet = (list: string[], ptrs: number, buf: number) => {
      const v = self.view();
      const b = self.bytes();
      for (const s of list) {
        v.setUint32(ptrs, buf, true);
        ptrs += 4;
        const e = utf8(s);
        b.set(e, buf);
        b[buf + e.length] = 0;
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
    return {
      args_get: (argv: number, buf: number) => listGet(self.args, argv, buf),
      args_sizes_get: (c: number, s: number) => listSizes(self.args, c, s),
      environ_get: (envp: number, buf: number) => listGet(self.env, envp, buf),
      environ_sizes_get: (c: number, s: number) => listSizes(self.env, c, s),
      clock_res_get(id: number, ptr: number) {
        if (clockNow(id) === null) return Errno.INVAL;
        self.view().setBigUint64(ptr, id === CLOCK.REALTIME ? 1000n : 1000n, true);
        return Errno.SUCCESS;
      },
      clock_time_get(id: number, _precision: bigint, ptr: number) {
        const t = clockNow(id);
        if (t === null) return Errno.INVAL;
        self.view().setBigUint64(ptr, t, true);
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
        return r;
      },
      fd_datasync(fd: number) {
        const f = fdOf(fd);
        return f ? f.fd_sync() : Errno.BADF;
      },
      fd_fdstat_get(fd: number, ptr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
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
        if (!f) return Errno.BADF;
        let n = 0;
        for (const [ptr, len] of self.iovs(iovs, count)) {
          const direct = (f as DirectReads).fd_pread_into?.(self.bytes().subarray(ptr, ptr + len), offset);
          const { ret, data } = direct ? { ret: direct.ret, data: null } : f.fd_pread(len, offset);
          if (ret !== Errno.SUCCESS) return ret;
          const got = direct ? direct.n : data!.length;
          if (!direct) self.bytes().set(data!, ptr);
          n += got;
          offset += BigInt(got);
          if (got < len) break;
        }
        self.view().setUint32(nreadPtr, n, true);
        return Errno.SUCCESS;
      },
      fd_prestat_get(fd: number, ptr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
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
        const { prestat } = f.fd_prestat_get();
        if (!prestat) return Errno.BADF;
        const name = prestat.inner.pr_name;
        if (name.length > len) return Errno.NAMETOOLONG;
        self.bytes().set(name, ptr);
        return Errno.SUCCESS;
      },
      fd_pwrite(fd: number, iovs: number, count: number, offset: bigint, nPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        let n = 0;
        for (const [ptr, len] of self.iovs(iovs, count)) {
          const { ret, nwritten } = f.fd_pwrite(self.bytes().slice(ptr, ptr + len), offset);
          if (ret !== Errno.SUCCESS) return ret;
          n += nwritten;
          offset += BigInt(nwritten);
          if (nwritten < len) break;
        }
        self.view().setUint32(nPtr, n, true);
        return Errno.SUCCESS;
      },
      fd_read(fd: number, iovs: number, count: number, nreadPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        let n = 0;
        for (const [ptr, len] of self.iovs(iovs, count)) {
          // Straight into guest memory when the fd can (overlay files): no buffer in between.
          const direct = (f as DirectReads).fd_read_into?.(self.bytes().subarray(ptr, ptr + len));
          const { ret, data } = direct ? { ret: direct.ret, data: null } : f.fd_read(len);
          if (ret !== Errno.SUCCESS) {
            if (n > 0) break;
            return ret;
          }
          const got = direct ? direct.n : data!.length;
          if (!direct) self.bytes().set(data!, ptr);
          n += got;
          if (got < len) break;
        }
        self.view().setUint32(nreadPtr, n, true);
        return Errno.SUCCESS;
      },
      fd_readdir(fd: number, buf: number, len: number, cookie: bigint, usedPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        let used = 0;
        const b = self.bytes();
        const head = new DataView(new ArrayBuffer(24));
        for (;;) {
          const { ret, dirent } = f.fd_readdir_single(cookie);
          if (ret !== Errno.SUCCESS) return ret;
          if (!dirent) break;
          const name = (dirent as Dirent).dir_name ?? utf8((dirent as unknown as { name: string }).name);
          head.setBigUint64(0, BigInt(dirent.d_next), true);
          head.setBigUint64(8, BigInt(dirent.d_ino), true);
          head.setUint32(16, name.length, true);
          head.setUint8(20, dirent.d_type);
          // A truncated last entry tells libc to call again with a bigger buffer.
          const entry = new Uint8Array(24 + name.length);
          entry.set(new Uint8Array(head.buffer), 0);
          entry.set(name, 24);
          const room = len - used;
          b.set(entry.subarray(0, Math.min(room, entry.length)), buf + used);
          used += Math.min(room, entry.length);
          if (used >= len) break;
          cookie = BigInt(dirent.d_next);
        }
        self.view().setUint32(usedPtr, used, true);
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
        return Errno.SUCCESS;
      },
      fd_seek(fd: number, offset: bigint, whence: number, outPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        const { ret, offset: at } = f.fd_seek(offset, whence);
        if (ret === Errno.SUCCESS) self.view().setBigUint64(outPtr, at, true);
        return ret;
      },
      fd_sync(fd: number) {
        const f = fdOf(fd);
        return f ? f.fd_sync() : Errno.BADF;
      },
      fd_tell(fd: number, outPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        const { ret, offset } = f.fd_tell();
        if (ret === Errno.SUCCESS) self.view().setBigUint64(outPtr, offset, true);
        return ret;
      },
      fd_write(fd: number, iovs: number, count: number, nPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        let n = 0;
        for (const [ptr, len] of self.iovs(iovs, count)) {
          if (!len) continue;
          const { ret, nwritten } = f.fd_write(self.bytes().slice(ptr, ptr + len));
          if (ret !== Errno.SUCCESS) {
            if (n > 0) break;
            return ret;
          }
          n += nwritten;
          if (nwritten < len) break;
        }
        self.view().setUint32(nPtr, n, true);
        return Errno.SUCCESS;
      },
      path_create_directory(fd: number, p: number, l: number) {
        const f = fdOf(fd);
        return f ? f.path_create_directory(self.str(p, l)) : Errno.BADF;
      },
      path_filestat_get(fd: number, flags: number, p: number, l: number, ptr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
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
        const ours = f as Fd & { path_link_to?: (fl: number, a: string, to: Fd, b: string) => number };
        if (ours.path_link_to) return ours.path_link_to(oldFlags, self.str(op, ol), t, self.str(np, nl));
        // browser_wasi_shim's protocol: look the inode up, link it at the target.
        const shimFrom = f as unknown as { path_lookup?: (p: string, fl: number) => { ret: number; inode_obj: unknown } };
        const shimTo = t as unknown as { path_link?: (p: string, inode: unknown, allowDir: boolean) => number };
        if (!shimFrom.path_lookup || !shimTo.path_link) return Errno.NOTSUP;
        const { ret, inode_obj } = shimFrom.path_lookup(self.str(op, ol), oldFlags);
        return inode_obj ? shimTo.path_link(self.str(np, nl), inode_obj, false) : ret;
      },
      path_open(fd: number, dirflags: number, p: number, l: number, oflags: number, base: bigint, inheriting: bigint, fdflags: number, outPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        const { ret, fd_obj } = f.path_open(dirflags, self.str(p, l), oflags, base, inheriting, fdflags);
        if (ret !== Errno.SUCCESS || !fd_obj) return ret || Errno.IO;
        self.view().setUint32(outPtr, self.allocate(fd_obj), true);
        return Errno.SUCCESS;
      },
      path_readlink(fd: number, p: number, l: number, buf: number, bufLen: number, usedPtr: number) {
        const f = fdOf(fd);
        if (!f) return Errno.BADF;
        const { ret, data } = f.path_readlink(self.str(p, l));
        if (data === null) return ret;
        const b = utf8(data).subarray(0, bufLen);
        self.bytes().set(b, buf);
        self.view().setUint32(usedPtr, b.length, true);
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
        const ours = f as Fd & { path_rename?: (a: string, to: Fd, b: string) => number };
        return ours.path_rename ? ours.path_rename(self.str(op, ol), t, self.str(np, nl)) : Errno.NOTSUP;
      },
      path_symlink(op: number, ol: number, fd: number, np: number, nl: number) {
        const f = fdOf(fd) as (Fd & { path_symlink?: (t: string, p: string) => number }) | undefined;
        if (!f) return Errno.BADF;
        return f.path_symlink ? f.path_symlink(self.str(op, ol), self.str(np, nl)) : Errno.NOTSUP;
      },
      path_unlink_file(fd: number, p: number, l: number) {
        const f = fdOf(fd);
        return f ? f.path_unlink_file(self.str(p, l)) : Errno.BADF;
      },
      poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) {
        if (nsubs === 0) return Errno.INVAL;
        const v = self.view();
        type Sub = { userdata: bigint; type: number; fd?: number; deadline?: bigint };
        const subs: Sub[] = [];
        for (let i = 0; i < nsubs; i++) {
          const s = inPtr + i * 48;
          const userdata = v.getBigUint64(s, true);
          const type = v.getUint8(s + 8);
          if (type === EVENTTYPE.CLOCK) {
            const id = v.getUint32(s + 16, true);
            const timeout = v.getBigUint64(s + 24, true);
            const flags = v.getUint16(s + 40, true);
            const now = clockNow(id);
            if (now === null) return Errno.INVAL;
            // Deadlines are kept on the monotonic clock.
            const rel = flags & SUBCLOCKFLAGS_ABSTIME ? timeout - now : timeout;
            subs.push({ userdata, type, deadline: self.e.monotonic() + (rel > 0n ? rel : 0n) });
          } else subs.push({ userdata, type, fd: v.getUint32(s + 16, true) });
        }
        // Files, stdio and directories never block here: fd subscriptions are ready at once.
        const events: Array<{ userdata: bigint; error: number; type: number; nbytes: bigint }> = [];
        for (const s of subs) {
          if (s.type === EVENTTYPE.CLOCK) continue;
          const f = s.fd === undefined ? undefined : fdOf(s.fd);
          if (!f) events.push({ userdata: s.userdata, error: Errno.BADF, type: s.type, nbytes: 0n });
          else if (s.type !== EVENTTYPE.FD_READ && s.type !== EVENTTYPE.FD_WRITE) events.push({ userdata: s.userdata, error: Errno.INVAL, type: s.type, nbytes: 0n });
          else events.push({ userdata: s.userdata, error: Errno.SUCCESS, type: s.type, nbytes: 1n });
        }
        if (!events.length) {
          const clocks = subs.filter((s) => s.type === EVENTTYPE.CLOCK);
          const first = clocks.reduce((a, b) => (b.deadline! < a.deadline! ? b : a));
          const wait = first.deadline! - self.e.monotonic();
          if (wait > 0n) self.e.sleep(wait);
          for (const s of clocks) if (s.deadline! <= first.deadline!) events.push({ userdata: s.userdata, error: Errno.SUCCESS, type: EVENTTYPE.CLOCK, nbytes: 0n });
        }
        const v2 = self.view();
        events.forEach((ev, i) => {
          const o = outPtr + i * 32;
          v2.setBigUint64(o, ev.userdata, true);
          v2.setUint16(o + 8, ev.error, true);
          v2.setUint8(o + 10, ev.type);
          v2.setBigUint64(o + 16, ev.nbytes, true);
          v2.setUint16(o + 24, 0, true);
        });
        v2.setUint32(neventsPtr, events.length, true);
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
        self.e.random(self.bytes().subarray(buf, buf + len));
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
