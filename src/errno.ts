/** WASI preview1 errno values (wasi_snapshot_preview1 `errno`), the one errno table of the project. */
export const Errno = {
  SUCCESS: 0, TOOBIG: 1, ACCES: 2, ADDRINUSE: 3, ADDRNOTAVAIL: 4, AFNOSUPPORT: 5, AGAIN: 6, ALREADY: 7,
  BADF: 8, BADMSG: 9, BUSY: 10, CANCELED: 11, CHILD: 12, CONNABORTED: 13, CONNREFUSED: 14, CONNRESET: 15,
  DEADLK: 16, DESTADDRREQ: 17, DOM: 18, DQUOT: 19, EXIST: 20, FAULT: 21, FBIG: 22, HOSTUNREACH: 23,
  IDRM: 24, ILSEQ: 25, INPROGRESS: 26, INTR: 27, INVAL: 28, IO: 29, ISCONN: 30, ISDIR: 31, LOOP: 32,
  MFILE: 33, MLINK: 34, MSGSIZE: 35, MULTIHOP: 36, NAMETOOLONG: 37, NETDOWN: 38, NETRESET: 39,
  NETUNREACH: 40, NFILE: 41, NOBUFS: 42, NODEV: 43, NOENT: 44, NOEXEC: 45, NOLCK: 46, NOLINK: 47,
  NOMEM: 48, NOMSG: 49, NOPROTOOPT: 50, NOSPC: 51, NOSYS: 52, NOTCONN: 53, NOTDIR: 54, NOTEMPTY: 55,
  NOTRECOVERABLE: 56, NOTSOCK: 57, NOTSUP: 58, NOTTY: 59, NXIO: 60, OVERFLOW: 61, OWNERDEAD: 62,
  PERM: 63, PIPE: 64, PROTO: 65, PROTONOSUPPORT: 66, PROTOTYPE: 67, RANGE: 68, ROFS: 69, SPIPE: 70,
  SRCH: 71, STALE: 72, TIMEDOUT: 73, TXTBSY: 74, XDEV: 75, NOTCAPABLE: 76,
} as const;

export type ErrnoName = keyof typeof Errno;

const names = new Map<number, ErrnoName>(Object.entries(Errno).map(([k, v]) => [v, k as ErrnoName]));

/** The symbolic name of an errno value, e.g. `ENOENT`. */
export function errnoName(code: number): string {
  const n = names.get(code);
  return n ? `E${n}` : `E?${code}`;
}

/**
 * The one error class thrown by the filesystem engine: carries a WASI errno
 * so the syscall layer can return it, and a message a person can read.
 */
export class FsError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, message: string) {
    // Guests probe paths that do not exist all the time (a program's search path, a
    // language's load path): these errors are answers, not faults, so no stack is
    // captured for them (in V8, where capturing it costs more than the lookup).
    const E = Error as { stackTraceLimit?: number };
    const limit = E.stackTraceLimit;
    E.stackTraceLimit = 0;
    try {
      super(`${errnoName(errno)}: ${message}`);
    } finally {
      E.stackTraceLimit = limit;
    }
    this.name = 'FsError';
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

/** Shorthand used throughout the engine: `throw fsError('NOENT', path)`. */
export function fsError(name: ErrnoName, message: string): FsError {
  return new FsError(Errno[name], message);
}

/** An error about stored data or user input outside the guest's filesystem (bad image, corrupt blob, unknown ref). */
export class LayerboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayerboxError';
  }
}
