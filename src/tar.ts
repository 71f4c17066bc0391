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
  if (!/^[0-7]+$/.test(s)) throw new LayerboxError(`bad tar header: ${what} is ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

const NS = 1_000_000_000n;
const floorDiv = (a: bigint, b: bigint): bigint => (a >= 0n ? a / b : -((-a + b - 1n) / b));

/** A pax time (`[-]SEC[.FRACTION]`) in nanoseconds; digits past the ninth are dropped. */
function parsePaxTime(v: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v.trim());
  if (!m) throw new LayerboxError(`bad tar pax mtime ${JSON.stringify(v)}`);
  const ns = BigInt(m[2]!) * NS + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  return m[1] ? -ns : ns;
}

/** Nanoseconds as a pax time: whole seconds, then nine fraction digits. */
function paxTime(ns: bigint): string {
  const neg = ns < 0n, a = neg ? -ns : ns;
  return `${neg ? '-' : ''}${a / NS}.${(a % NS).toString().padStart(9, '0')}`;
}

function parsePax(data: Uint8Array, at: number): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    if (sp - i > 20) throw new LayerboxError('bad tar pax header');
    const len = parseInt(fromUtf8(data.subarray(i, sp)), 10);
    if (!(len > 0) || i + len > data.length) throw new LayerboxError('bad tar pax header');
    const end = i + len - 1;
    const eq = data.subarray(sp + 1, end).indexOf(0x3d) + sp + 1;
    if (eq > sp + 1) {
      // Names are checked by their byte length before they are decoded.
      const key = fromUtf8(data.subarray(sp + 1, eq));
      if ((key === 'path' || key === 'linkpath') && end - eq - 1 > MAX_TAR_NAME)
        throw new LayerboxError(`tar pax ${key} at byte ${at} is ${end - eq - 1} bytes (at most ${MAX_TAR_NAME}): ${shortName(fromUtf8(data.subarray(eq + 1, eq + 61)))}`);
      out[key] = fromUtf8(data.subarray(eq + 1, end));
    }
    i += len;
  }
  return out;
}

/** Reads an uncompressed tar (ustar, pax and GNU long names). Truncation and bad checksums are clear errors. */
export function readTar(bytes: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  let pax: Record<string, string> = {};
  let longName: string | null = null;
  let longLink: string | null = null;
  let paxBytes = 0;
  for (let off = 0; off + BLOCK <= bytes.length; ) {
    const h = bytes.subarray(off, off + BLOCK);
    const at = off;
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== octal(h, 148, 8, 'checksum')) throw new LayerboxError(`bad tar header checksum at byte ${off}`);
    const size = octal(h, 124, 12, 'size');
    const type = String.fromCharCode(h[156]! || 48);
    // Bound the special records before reading them: their content is kept whole.
    if ((type === 'x' || type === 'g') && size > MAX_PAX_HEADER) throw new LayerboxError(`tar pax header at byte ${at} is ${size} bytes (at most ${MAX_PAX_HEADER})`);
    if ((type === 'L' || type === 'K') && size > MAX_TAR_NAME + 1) throw new LayerboxError(`tar GNU long ${type === 'L' ? 'name' : 'link'} at byte ${at} is ${size} bytes (at most ${MAX_TAR_NAME})`);
    const dataStart = off + BLOCK;
    if (dataStart + size > bytes.length) throw new LayerboxError(`tar is truncated (an entry at byte ${off} needs ${size} bytes)`);
    const data = bytes.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      // Several pax headers before one member add up: bound their sum too.
      if ((paxBytes += size) > MAX_PAX_HEADER) throw new LayerboxError(`tar pax headers before byte ${off} add up to more than ${MAX_PAX_HEADER} bytes`);
      pax = { ...pax, ...parsePax(data, at) };
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = fromUtf8(data).replace(/\0+$/, '');
      continue;
    }
    if (type === 'K') {
      longLink = fromUtf8(data).replace(/\0+$/, '');
      continue;
    }
    const prefix = field(h, 345, 155);
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const linkname = pax.linkpath ?? longLink ?? field(h, 157, 100);
    const paxNs = pax.mtime !== undefined ? parsePaxTime(pax.mtime) : null;
    const kind = type === '0' || type === '7' ? 'file' : type === '5' ? 'dir' : type === '2' ? 'symlink' : type === '1' ? 'hardlink' : null;
    if (kind) {
      out.push({
        path: name,
        type: kind,
        mode: octal(h, 100, 8, 'mode') & 0o7777,
        uid: octal(h, 108, 8, 'uid'),
        gid: octal(h, 116, 8, 'gid'),
        ...(paxNs !== null ? { mtime: Number(floorDiv(paxNs, NS)), mtimeNs: paxNs } : { mtime: octal(h, 136, 12, 'mtime') }),
        ...(kind === 'file' ? { data } : {}),
        ...(kind === 'symlink' || kind === 'hardlink' ? { linkname } : {}),
      });
    }
    pax = {};
    paxBytes = 0;
    longName = longLink = null;
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
  oct(size, 124, 12);
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

/** Writes a tar (ustar, with pax records for names that do not fit and for sub-second mtimes). Deterministic: same entries, same bytes. */
export function writeTar(entries: TarEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const pad = (n: number) => new Uint8Array((BLOCK - (n % BLOCK)) % BLOCK);
  for (const e of entries) {
    const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
    const link = e.linkname ?? '';
    // What readTar would refuse is not written: an export always imports again.
    for (const n of [name, link]) if (n.length > MAX_TAR_NAME / 3 && utf8(n).length > MAX_TAR_NAME) throw new LayerboxError(`cannot write ${shortName(n)} to a tar: it is ${utf8(n).length} bytes (a tar name is at most ${MAX_TAR_NAME})`);
    const exactTime = e.mtimeNs !== undefined && (e.mtimeNs % NS !== 0n || e.mtimeNs < 0n) ? e.mtimeNs : null;
    if (utf8(name).length > 100 || utf8(link).length > 100 || exactTime !== null) {
      const rec = (k: string, v: string) => {
        const body = ` ${k}=${v}\n`;
        let len = utf8(body).length + 1;
        while (String(len).length + utf8(body).length !== len) len++;
        return `${len}${body}`;
      };
      const long = utf8(name).length > 100 || utf8(link).length > 100;
      const paxBody = utf8((long ? rec('path', name) + (link ? rec('linkpath', link) : '') : '') + (exactTime !== null ? rec('mtime', paxTime(exactTime)) : ''));
      parts.push(header('PaxHeader', 'x', paxBody.length, { ...e, mode: 0o644 }), paxBody, pad(paxBody.length));
    }
    const data = e.type === 'file' ? e.data ?? new Uint8Array() : new Uint8Array();
    const type = { file: '0', dir: '5', symlink: '2', hardlink: '1' }[e.type];
    parts.push(header(name, type, data.length, e, link), data, pad(data.length));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return concatBytes(parts);
}
