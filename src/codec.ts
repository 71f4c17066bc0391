import { LayerboxError } from './errno.js';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** Growable byte writer for the binary stored formats (LEB128 varints, length-prefixed strings). */
export class Writer {
  private buf = new Uint8Array(1024);
  private pos = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    new DataView(this.buf.buffer).setUint32(this.pos, v, true);
    this.pos += 4;
    return this;
  }
  /** Unsigned integer up to 2^53. */
  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`cannot encode ${v}`);
    while (v >= 0x80) {
      this.u8((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    return this.u8(v);
  }
  /** Signed 64-bit (nanosecond timestamps), zig-zag encoded. */
  big(v: bigint): this {
    let z = v >= 0n ? v << 1n : ((-v) << 1n) - 1n;
    while (z >= 0x80n) {
      this.u8(Number(z & 0x7fn) | 0x80);
      z >>= 7n;
    }
    return this.u8(Number(z));
  }
  str(s: string): this {
    const b = enc.encode(s);
    this.uint(b.length);
    return this.bytes(b);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Reader matching `Writer`; every overrun is a clear error naming `what`. */
export class Reader {
  pos = 0;
  constructor(private buf: Uint8Array, private what: string) {}
  fail(msg: string): never {
    throw new LayerboxError(`${this.what}: ${msg} (at byte ${this.pos})`, { code: 'CORRUPT' });
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.buf.length) this.fail('truncated');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  u8(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++]!;
  }
  u32(): number {
    const b = this.bytes(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }
  uint(): number {
    let v = 0, mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) {
        if (!Number.isSafeInteger(v)) this.fail('integer out of range');
        return v;
      }
      mul *= 0x80;
    }
    return this.fail('integer too long');
  }
  big(): bigint {
    let z = 0n, shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      z |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return z & 1n ? -((z + 1n) >> 1n) : z >> 1n;
      shift += 7n;
    }
    return this.fail('integer too long');
  }
  str(): string {
    const n = this.uint();
    try {
      return dec.decode(this.bytes(n));
    } catch {
      return this.fail('invalid UTF-8 in a name');
    }
  }
}

/** Writes an 8-byte ASCII magic and a u32 version. */
export function writeHeader(w: Writer, magic: string, version: number): void {
  w.bytes(enc.encode(magic.padEnd(8, '\0').slice(0, 8))).u32(version);
}

/** Checks the magic and version; unknown versions are refused. */
export function readHeader(r: Reader, magic: string, versions: readonly number[]): number {
  // Byte by byte: a magic of arbitrary bytes is refused below, never a decoding crash.
  const m = String.fromCharCode(...r.bytes(8)).replace(/\0+$/, '');
  if (m !== magic) r.fail(`not a ${magic} (magic ${JSON.stringify(m)})`);
  const v = r.u32();
  if (!versions.includes(v)) r.fail(`unsupported ${magic} version ${v} (this layerbox reads ${versions.join(', ')})`);
  return v;
}
