import { sha256 } from '@noble/hashes/sha2.js';
import { LayerboxError } from './errno.js';

/** `sha256:<64 hex>`: the name of a blob. */
export type Digest = `sha256:${string}`;

/** Computes the sha256 of bytes as 32 raw bytes. Hosts may pass a faster one (node:crypto). */
export type Hasher = (data: Uint8Array) => Uint8Array;

/** The portable hasher (pure JS). */
export const defaultHasher: Hasher = (data) => sha256(data);


const HEX_CODES = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/** Lowercase hex. Built from char codes in one go: a flat string, not a rope of pieces (digests are kept by the 100k). */
export function toHex(bytes: Uint8Array): string {
  if (bytes.length > 4096) {
    const parts: string[] = [];
    for (let i = 0; i < bytes.length; i += 4096) parts.push(toHex(bytes.subarray(i, i + 4096)));
    return parts.join('');
  }
  const codes = new Array<number>(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    codes[2 * i] = HEX_CODES[bytes[i]! >> 4]!;
    codes[2 * i + 1] = HEX_CODES[bytes[i]! & 15]!;
  }
  return String.fromCharCode(...codes);
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  const nib = (c: number): number => (c <= 57 ? c - 48 : (c | 32) - 87);
  for (let i = 0; i < out.length; i++) out[i] = (nib(hex.charCodeAt(2 * i)) << 4) | nib(hex.charCodeAt(2 * i + 1));
  return out;
}

export function digestOf(data: Uint8Array, hash: Hasher = defaultHasher): Digest {
  return `sha256:${toHex(hash(data))}`;
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

export function assertDigest(s: unknown, what = 'digest'): Digest {
  if (!isDigest(s)) throw new LayerboxError(`invalid ${what}: ${JSON.stringify(s)} (expected sha256:<64 hex digits>)`, { code: 'CORRUPT' });
  return s;
}

/** Raw 32 bytes of a digest, for compact tables. */
export function digestBytes(d: Digest): Uint8Array {
  return fromHex(d.slice(7));
}

export function digestFromBytes(b: Uint8Array): Digest {
  return `sha256:${toHex(b)}`;
}

/** Short form for listings: the first 12 hex digits. */
export function shortDigest(d: string): string {
  return d.startsWith('sha256:') ? d.slice(7, 19) : d.slice(0, 12);
}
