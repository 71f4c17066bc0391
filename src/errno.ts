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

/** What the common errnos mean, in the words of strerror: messages name the failure, not the code. */
const DESCRIPTIONS: Partial<Record<ErrnoName, string>> = {
  NOSPC: 'no space left on device', DQUOT: 'disk quota exceeded', IO: 'input/output error', ROFS: 'read-only file system',
  ACCES: 'permission denied', PERM: 'operation not permitted', MFILE: 'too many open files', NFILE: 'too many open files in the system',
  NOMEM: 'out of memory', FBIG: 'file too large', NOENT: 'no such file or directory', NOTDIR: 'not a directory', ISDIR: 'is a directory',
  EXIST: 'file exists', LOOP: 'too many levels of symbolic links', NAMETOOLONG: 'file name too long', AGAIN: 'resource temporarily unavailable',
  BUSY: 'device or resource busy', NXIO: 'no such device or address', NODEV: 'no such device', STALE: 'stale file handle', MLINK: 'too many links',
  INVAL: 'invalid argument', NOTEMPTY: 'directory not empty', TXTBSY: 'text file busy', XDEV: 'cross-device link',
};

/** A person's words for an errno: `no space left on device` (or the code, for a rare one). */
export function describeErrno(errno: number): string {
  const n = names.get(errno);
  return (n && DESCRIPTIONS[n]) ?? errnoName(errno);
}

/**
 * The errno a host error carries: hosts name them as POSIX does (`code:
 * 'ENOSPC'` in Node), the same names as the WASI table. Undefined for an
 * error that is not a host I/O failure.
 */
export function hostErrno(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code) || code === 'ESUCCESS') return undefined;
  return Object.hasOwn(Errno, code.slice(1)) ? Errno[code.slice(1) as ErrnoName] : undefined;
}

/**
 * The kinds of LayerboxError, in the manner of containerd's errdefs: callers
 * test `e.code` (or {@link isCode}), never the message, which is for people
 * and may change.
 */
export const LayerboxCode = {
  /** The thing named does not exist: an image, box, tag, blob, file or program. */
  NOT_FOUND: 'NOT_FOUND',
  /** The name is taken: a box, tag or file that would be created exists. */
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  /** Changed by someone else meanwhile, or still in use (an image a box is based on). */
  CONFLICT: 'CONFLICT',
  /** Stored data or input that fails its checks: bad magic, digest mismatch, malformed tar, bundle or image. */
  CORRUPT: 'CORRUPT',
  /** Out of room: ENOSPC, EDQUOT, a browser's QuotaExceededError, a box's limits. */
  QUOTA: 'QUOTA',
  /** Any other failure of the host's storage or I/O. */
  IO: 'IO',
  /** Bad arguments or usage: a malformed name or reference, a format version this layerbox does not read. */
  INVALID: 'INVALID',
  /** Well-formed, but something this build does not do (a feature of a format, an operation on a backend). */
  UNSUPPORTED: 'UNSUPPORTED',
  /** Locked: another process or run holds it. */
  BUSY: 'BUSY',
  /** A deadline passed. */
  TIMEOUT: 'TIMEOUT',
  /** A remote service could not be reached or refused to serve (network, HTTP). */
  UNAVAILABLE: 'UNAVAILABLE',
} as const;

/** One of the {@link LayerboxCode} values: `'NOT_FOUND'`, `'CORRUPT'`... */
export type LayerboxCode = (typeof LayerboxCode)[keyof typeof LayerboxCode];

/**
 * The code a host errno stands for: no space or quota is QUOTA, a timeout is
 * TIMEOUT, any other errno is IO (the host failed; what failed is in the message).
 */
export function codeOfErrno(errno: number): LayerboxCode {
  if (errno === Errno.NOSPC || errno === Errno.DQUOT) return 'QUOTA';
  if (errno === Errno.TIMEDOUT) return 'TIMEOUT';
  return 'IO';
}

/**
 * The code for a host error met where a named path was expected (a file to
 * import, a directory to mount): a missing path is NOT_FOUND, an existing one
 * ALREADY_EXISTS, otherwise as {@link codeOfErrno}; `fallback` for an error
 * without an errno.
 */
export function codeOfHostError(e: unknown, fallback: LayerboxCode = 'IO'): LayerboxCode {
  const errno = hostErrno(e);
  if (errno === undefined) return fallback;
  if (errno === Errno.NOENT || errno === Errno.NOTDIR) return 'NOT_FOUND';
  if (errno === Errno.EXIST) return 'ALREADY_EXISTS';
  return codeOfErrno(errno);
}

/** Options of a {@link LayerboxError}: its kind, the host errno behind it, the error that caused it. */
export interface LayerboxErrorOptions {
  /** The kind of failure; derived from `errno` when not given (see {@link LayerboxError.code}). */
  code?: LayerboxCode;
  /** The errno of the host failure behind it (ENOSPC, EIO...), if any. */
  errno?: number;
  /** The error it wraps, kept as the standard `cause`. */
  cause?: unknown;
}

/** An error about stored data or user input outside the guest's filesystem (bad image, corrupt blob, unknown ref). */
export class LayerboxError extends Error {
  /**
   * What kind of failure this is: callers test this, never the message (like
   * containerd's errdefs). When the thrower gives none it is derived from
   * `errno` ({@link codeOfErrno}); with neither, it is `INVALID`: an error
   * without a host failure behind it is about what it was given.
   */
  readonly code: LayerboxCode;
  /**
   * The errno of the host failure behind it (ENOSPC, EIO...), if any. The
   * host's own error is kept as `cause`.
   */
  readonly errno?: number;
  constructor(message: string, opts: LayerboxErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LayerboxError';
    this.code = opts.code ?? (opts.errno !== undefined ? codeOfErrno(opts.errno) : 'INVALID');
    if (opts.errno !== undefined) this.errno = opts.errno;
  }
}

/** Whether `e` is a LayerboxError of kind `code`: `if (isCode(e, 'NOT_FOUND')) ...`. */
export function isCode(e: unknown, code: LayerboxCode): boolean {
  return e instanceof LayerboxError && e.code === code;
}

/**
 * A host I/O failure as a LayerboxError carrying its errno and the code it
 * stands for ({@link codeOfErrno}: ENOSPC is QUOTA), with `what` (the object:
 * `writing a pack of /s`) in the message; any other error as it is.
 */
export function hostFailure(e: unknown, what: string): unknown {
  if (e instanceof LayerboxError || e instanceof FsError) return e;
  const errno = hostErrno(e);
  return errno === undefined ? e : new LayerboxError(`${describeErrno(errno)} ${what}`, { errno, cause: e });
}

/** The errno an error carries: a LayerboxError's or FsError's own, or a host error's code; undefined for none. */
export function errnoOf(e: unknown): number | undefined {
  if (e instanceof LayerboxError || e instanceof FsError) return e.errno;
  return hostErrno(e);
}
