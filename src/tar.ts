import { LayerboxError } from './errno.js';
import { concatBytes, fromUtf8, utf8 } from './text.js';

/** One tar member, as read or to be written. */
export interface TarEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /**
   * The exact mtime in nanoseconds since the epoch, when known: read from a
   * pax `mtime` record; written as one (`mtime=SEC.NANOS`) when it is not a
   * whole second (or is negative). `mtime` is then its whole seconds.
   */
  mtimeNs?: bigint;
  data?: Uint8Array;
  /**
   * Writing only, instead of `data`: a file's content as pieces made on
   * demand (`size` bytes in all), so a file too big to hold is streamed.
   */
  size?: number;
  body?: () => Iterable<Uint8Array>;
  /** Symlink target, or the hard link's first name. */
  linkname?: string;
}

const BLOCK = 512;

/**
 * Longest member name (pax `path`/`linkpath`, GNU long name or link) read
 * from a tar. Above Linux's PATH_MAX because a box may hold longer paths (a
 * guest can nest directories by renames) and its exports must import again;
 * bounded because a layer table stores full paths, so depth times length is
 * what a tree costs (at most 8,192 levels of this).
 */
export const MAX_TAR_NAME = 16 * 1024;
/** Largest pax extended header read (Go's archive/tar has the same bound). */
export const MAX_PAX_HEADER = 1024 * 1024;

/** A name for an error line: never the whole of a hostile one. */
const shortName = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 60)}...` : s);

function field(h: Uint8Array, off: number, len: number): string {
  const b = h.subarray(off, off + len);
  const end = b.indexOf(0);
  return fromUtf8(end < 0 ? b : b.subarray(0, end));
}

function octal(h: Uint8Array, off: number, len: number, what: string): number {
  if (h[off]! & 0x80) {
    // base-256 (GNU) for big values
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + h[off + i]!;
    return v;
  }
  const s = field(h, off, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new LayerboxError(`bad tar header: ${what} is ${JSON.stringify(s)}`, { code: 'CORRUPT' });
  return parseInt(s, 8);
}

const NS = 1_000_000_000n;
const floorDiv = (a: bigint, b: bigint): bigint => (a >= 0n ? a / b : -((-a + b - 1n) / b));

/** A pax time (`[-]SEC[.FRACTION]`) in nanoseconds; digits past the ninth are dropped. */
function parsePaxTime(v: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v.trim());
  if (!m) throw new LayerboxError(`bad tar pax mtime ${JSON.stringify(v)}`, { code: 'CORRUPT' });
  const ns = BigInt(m[2]!) * NS + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  return m[1] ? -ns : ns;
}

/** Nanoseconds as a pax time: whole seconds, then nine fraction digits. */
function paxTime(ns: bigint): string {
  const neg = ns < 0n, a = neg ? -ns : ns;
  return `${neg ? '-' : ''}${a / NS}.${(a % NS).toString().padStart(9, '0')}`;
}

function paxNumber(v: string, what: string): number {
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new LayerboxError(`bad tar pax ${what} ${JSON.stringify(v.slice(0, 40))}`, { code: 'CORRUPT' });
  return n;
}

function parsePax(data: Uint8Array, at: number): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    if (sp - i > 20) throw new LayerboxError('bad tar pax header', { code: 'CORRUPT' });
    const len = parseInt(fromUtf8(data.subarray(i, sp)), 10);
    if (!(len > 0) || i + len > data.length) throw new LayerboxError('bad tar pax header', { code: 'CORRUPT' });
    const end = i + len - 1;
    const eq = data.subarray(sp + 1, end).indexOf(0x3d) + sp + 1;
    if (eq > sp + 1) {
      // Names are checked by their byte length before they are decoded.
      const key = fromUtf8(data.subarray(sp + 1, eq));
      if ((key === 'path' || key === 'linkpath') && end - eq - 1 > MAX_TAR_NAME)
        throw new LayerboxError(`tar pax ${key} at byte ${at} is ${end - eq - 1} bytes (at most ${MAX_TAR_NAME}): ${shortName(fromUtf8(data.subarray(eq + 1, eq + 61)))}`, { code: 'UNSUPPORTED' });
      out[key] = fromUtf8(data.subarray(eq + 1, end));
    }
    i += len;
  }
  return out;
}

type EntryKind = TarEntry['type'];
const KINDS: Record<string, EntryKind> = { '0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' };

/**
 * What tar headers say, one header at a time: checksums, sizes (a pax `size`
 * wins), and the pax and GNU long-name records that describe the next
 * member, each bounded before its bytes are read. Both tar readers (whole
 * bytes, and streamed) go through it, so they accept the same input.
 */
class TarHeaders {
  private pax: Record<string, string> = {};
  private paxBytes = 0;
  private longName: string | null = null;
  private longLink: string | null = null;

  /** Checks the header `h` found at byte `at`: its type and the size of its content. */
  head(h: Uint8Array, at: number): { type: string; size: number; special: boolean } {
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== octal(h, 148, 8, 'checksum')) throw new LayerboxError(`bad tar header checksum at byte ${at}`, { code: 'CORRUPT' });
    const type = String.fromCharCode(h[156]! || 48);
    const special = 'xgLK'.includes(type);
    // A pax `size` record (files of 8 GiB and more) wins over the header's field of the entry it describes.
    const paxSize = this.pax.size !== undefined && !special ? paxNumber(this.pax.size, 'size') : null;
    const size = paxSize ?? octal(h, 124, 12, 'size');
    // Special records are kept whole: bound them before they are read.
    if ((type === 'x' || type === 'g') && size > MAX_PAX_HEADER) throw new LayerboxError(`tar pax header at byte ${at} is ${size} bytes (at most ${MAX_PAX_HEADER})`, { code: 'UNSUPPORTED' });
    if ((type === 'L' || type === 'K') && size > MAX_TAR_NAME + 1) throw new LayerboxError(`tar GNU long ${type === 'L' ? 'name' : 'link'} at byte ${at} is ${size} bytes (at most ${MAX_TAR_NAME})`, { code: 'UNSUPPORTED' });
    // Several pax headers before one member add up: bound their sum too.
    if (type === 'x' && (this.paxBytes += size) > MAX_PAX_HEADER) throw new LayerboxError(`tar pax headers before byte ${at + BLOCK + size} add up to more than ${MAX_PAX_HEADER} bytes`, { code: 'UNSUPPORTED' });
    return { type, size, special };
  }

  /** Takes the content of a special record (x, g, L or K) found at byte `at`. */
  special(type: string, data: Uint8Array, at: number): void {
    if (type === 'x') this.pax = { ...this.pax, ...parsePax(data, at) };
    else if (type === 'L') this.longName = fromUtf8(data).replace(/\0+$/, '');
    else if (type === 'K') this.longLink = fromUtf8(data).replace(/\0+$/, '');
  }

  /** The entry a member header describes (without its data; null for types that are skipped), then forgets the records before it. */
  entry(h: Uint8Array, type: string): TarEntry | null {
    const pax = this.pax;
    const prefix = field(h, 345, 155);
    const name = pax.path ?? this.longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const linkname = pax.linkpath ?? this.longLink ?? field(h, 157, 100);
    this.pax = {};
    this.paxBytes = 0;
    this.longName = this.longLink = null;
    const kind = KINDS[type];
    if (!kind) return null;
    const paxNs = pax.mtime !== undefined ? parsePaxTime(pax.mtime) : null;
    return {
      path: name,
      type: kind,
      mode: octal(h, 100, 8, 'mode') & 0o7777,
      uid: octal(h, 108, 8, 'uid'),
      gid: octal(h, 116, 8, 'gid'),
      ...(paxNs !== null ? { mtime: Number(floorDiv(paxNs, NS)), mtimeNs: paxNs } : { mtime: octal(h, 136, 12, 'mtime') }),
      ...(kind === 'symlink' || kind === 'hardlink' ? { linkname } : {}),
    };
  }
}

/** Reads an uncompressed tar (ustar, pax and GNU long names). Truncation and bad checksums are clear errors. */
export function readTar(bytes: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  const headers = new TarHeaders();
  for (let off = 0; off + BLOCK <= bytes.length; ) {
    const h = bytes.subarray(off, off + BLOCK);
    const at = off;
    if (h.every((b) => b === 0)) break;
    const { type, size, special } = headers.head(h, at);
    const dataStart = off + BLOCK;
    if (dataStart + size > bytes.length) throw new LayerboxError(`tar is truncated (an entry at byte ${off} needs ${size} bytes)`, { code: 'CORRUPT' });
    const data = bytes.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (special) {
      headers.special(type, data, at);
      continue;
    }
    const entry = headers.entry(h, type);
    if (entry) out.push(entry.type === 'file' ? { ...entry, data } : entry);
  }
  return out;
}

function header(name: string, type: string, size: number, e: TarEntry, linkname = ''): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (s: string, off: number, len: number) => h.set(utf8(s).subarray(0, len), off);
  const oct = (v: number, off: number, len: number) => put(v.toString(8).padStart(len - 1, '0'), off, len - 1);
  put(name, 0, 100);
  oct(e.mode, 100, 8);
  oct(e.uid, 108, 8);
  oct(e.gid, 116, 8);
  if (size <= MAX_OCTAL_SIZE) oct(size, 124, 12);
  else {
    // base-256 (GNU, also read by pax readers), beside the pax `size` record.
    h[124] = 0x80;
    for (let i = 135, v = size; i > 124; i--, v = Math.floor(v / 256)) h[i] = v % 256;
  }
  oct(Math.max(0, e.mtimeNs !== undefined ? Number(floorDiv(e.mtimeNs, NS)) : Math.floor(e.mtime)), 136, 12);
  h.fill(32, 148, 156);
  h[156] = type.charCodeAt(0);
  put(linkname, 157, 100);
  put('ustar\u000000', 257, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** Largest size an octal ustar size field holds (8 GiB - 1). */
const MAX_OCTAL_SIZE = 0o77777777777;

/** Writes a tar (ustar, with pax records for names that do not fit and for sub-second mtimes). Deterministic: same entries, same bytes. */
export function writeTar(entries: Iterable<TarEntry>): Uint8Array {
  return concatBytes([...tarPieces(entries)]);
}

/**
 * A tar as a stream of pieces: headers, then each file's content as its
 * `body` gives it (never the whole file at once), then the end blocks. Sizes
 * of 8 GiB and more are written in base-256 and as a pax `size` record.
 */
export function* tarPieces(entries: Iterable<TarEntry>, end = true): Generator<Uint8Array> {
  const pad = (n: number) => new Uint8Array((BLOCK - (n % BLOCK)) % BLOCK);
  for (const e of entries) {
    const size = e.type !== 'file' ? 0 : e.body ? e.size ?? 0 : e.data?.length ?? 0;
    const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
    const link = e.linkname ?? '';
    // What readTar would refuse is not written: an export always imports again.
    for (const n of [name, link]) if (n.length > MAX_TAR_NAME / 3 && utf8(n).length > MAX_TAR_NAME) throw new LayerboxError(`cannot write ${shortName(n)} to a tar: it is ${utf8(n).length} bytes (a tar name is at most ${MAX_TAR_NAME})`, { code: 'UNSUPPORTED' });
    const exactTime = e.mtimeNs !== undefined && (e.mtimeNs % NS !== 0n || e.mtimeNs < 0n) ? e.mtimeNs : null;
    if (utf8(name).length > 100 || utf8(link).length > 100 || exactTime !== null || size > MAX_OCTAL_SIZE) {
      const rec = (k: string, v: string) => {
        const body = ` ${k}=${v}\n`;
        let len = utf8(body).length + 1;
        while (String(len).length + utf8(body).length !== len) len++;
        return `${len}${body}`;
      };
      const long = utf8(name).length > 100 || utf8(link).length > 100;
      const paxBody = utf8((long ? rec('path', name) + (link ? rec('linkpath', link) : '') : '') + (exactTime !== null ? rec('mtime', paxTime(exactTime)) : '') + (size > MAX_OCTAL_SIZE ? rec('size', String(size)) : ''));
      yield header('PaxHeader', 'x', paxBody.length, { ...e, mode: 0o644 });
      yield paxBody;
      yield pad(paxBody.length);
    }
    const type = { file: '0', dir: '5', symlink: '2', hardlink: '1' }[e.type];
    yield header(name, type, size, e, link);
    if (e.type === 'file' && e.body) {
      let n = 0;
      for (const piece of e.body()) {
        n += piece.length;
        if (n > size) throw new LayerboxError(`tar: ${JSON.stringify(e.path)} gave more than its ${size} bytes`, { code: 'CONFLICT' });
        yield piece;
      }
      if (n !== size) throw new LayerboxError(`tar: ${JSON.stringify(e.path)} gave ${n} of its ${size} bytes`, { code: 'CONFLICT' });
    } else if (e.type === 'file' && e.data) yield e.data;
    yield pad(size);
  }
  if (end) yield TAR_END;
}

/** The two zero blocks that end a tar (for writers that call `tarPieces` entry by entry). */
export const TAR_END = new Uint8Array(BLOCK * 2);

/** Where a streamed tar reader gets its bytes: in order, with a position. */
interface TarSource {
  pos: number;
  /** Up to `max` bytes (null at the end). */
  some(max: number): Promise<Uint8Array | null>;
  /** Exactly `n` bytes, or null when the source ends first. */
  take(n: number): Promise<Uint8Array | null>;
  /** Passes `n` bytes; false when the source ends first. */
  skip(n: number): Promise<boolean>;
}

/** A file of `total` bytes read at positions: content passed over is never read (an index of a big tar reads its headers only). */
class AtSource implements TarSource {
  pos = 0;
  constructor(private readAt: (pos: number, len: number) => Promise<Uint8Array>, private total: number) {}
  async some(max: number): Promise<Uint8Array | null> {
    const n = Math.min(max, this.total - this.pos);
    return n > 0 ? this.take(n) : null;
  }
  async take(n: number): Promise<Uint8Array | null> {
    if (this.pos + n > this.total) return null;
    const b = await this.readAt(this.pos, n);
    if (b.length !== n) return null;
    this.pos += n;
    return b;
  }
  async skip(n: number): Promise<boolean> {
    if (this.pos + n > this.total) return false;
    this.pos += n;
    return true;
  }
}

/** Pulls exact byte counts from an async stream of pieces of any size. */
class ByteQueue implements TarSource {
  private pieces: Uint8Array[] = [];
  private len = 0;
  private ended = false;
  pos = 0;
  constructor(private it: AsyncIterator<Uint8Array>) {}
  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    if (r.value.length) {
      this.pieces.push(r.value);
      this.len += r.value.length;
    }
    return true;
  }
  /** Up to `max` bytes as they come (null at the end of the stream). */
  async some(max: number): Promise<Uint8Array | null> {
    while (!this.len) if (!(await this.more())) return null;
    const first = this.pieces[0]!;
    const out = first.length <= max ? first : first.subarray(0, max);
    if (out === first) this.pieces.shift();
    else this.pieces[0] = first.subarray(max);
    this.len -= out.length;
    this.pos += out.length;
    return out;
  }
  /** Exactly `n` bytes (n small: headers, pax records), or null when the stream ends first. */
  async take(n: number): Promise<Uint8Array | null> {
    while (this.len < n) if (!(await this.more())) return null;
    const parts: Uint8Array[] = [];
    for (let left = n; left > 0; ) {
      const p = (await this.some(left))!;
      parts.push(p);
      left -= p.length;
    }
    return parts.length === 1 ? parts[0]! : concatBytes(parts);
  }
  async skip(n: number): Promise<boolean> {
    for (let left = n; left > 0; ) {
      const p = await this.some(left);
      if (!p) return false;
      left -= p.length;
    }
    return true;
  }
}

/** One member of a streamed tar; a file's `content` must be read (or left) before the next member is asked for. */
export interface TarStreamMember {
  entry: TarEntry;
  size: number;
  /** Where its content starts in the tar. */
  offset: number;
  content?: AsyncIterable<Uint8Array>;
}

/**
 * The members of a tar read at positions (a file of `total` bytes): headers
 * are read, content only as a member's `content` is iterated.
 */
export function readTarAt(readAt: (pos: number, len: number) => Promise<Uint8Array>, total: number): AsyncGenerator<TarStreamMember> {
  return tarMembers(new AtSource(readAt, total));
}

/**
 * Reads an uncompressed tar from a stream of pieces, one member at a time,
 * file content passed on as it arrives: memory stays at a few pieces however
 * big a member is. Same formats and checks as `readTar`.
 */
export function readTarStream(src: AsyncIterable<Uint8Array>): AsyncGenerator<TarStreamMember> {
  return tarMembers(new ByteQueue(src[Symbol.asyncIterator]()));
}

async function* tarMembers(q: TarSource): AsyncGenerator<TarStreamMember> {
  const headers = new TarHeaders();
  for (;;) {
    const at = q.pos;
    const h = await q.take(BLOCK);
    if (!h || h.every((b) => b === 0)) return;
    const { type, size, special } = headers.head(h, at);
    const pad = Math.ceil(size / BLOCK) * BLOCK - size;
    const truncated = () => new LayerboxError(`tar is truncated (an entry at byte ${at} needs ${size} bytes)`, { code: 'CORRUPT' });
    if (special) {
      const data = await q.take(size);
      if (!data || !(await q.skip(pad))) throw truncated();
      headers.special(type, data, at);
      continue;
    }
    const entry = headers.entry(h, type);
    let left = size;
    if (entry) {
      const content = entry.type !== 'file' ? undefined : (async function* () {
        while (left > 0) {
          const p = await q.some(Math.min(left, 1 << 20));
          if (!p) throw truncated();
          left -= p.length;
          yield p;
        }
      })();
      yield { entry, size, offset: at + BLOCK, ...(content ? { content } : {}) };
    }
    // Whatever the reader left of this member, and the padding.
    if (!(await q.skip(left + pad))) throw truncated();
  }
}

