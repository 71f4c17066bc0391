// Byte streams for archive and registry input: everything large is read as an
// async iterable of pieces, never whole; small documents are read with a cap.
import { sha256 } from '@noble/hashes/sha2.js';
import { type Digest, toHex } from '../digest.js';
import { LayerboxError } from '../errno.js';

export type ByteStream = AsyncIterable<Uint8Array>;

/** A member too large to hold in memory: re-readable as a stream. */
export interface ArchiveMember {
  /** Its size in bytes, when known before reading. */
  readonly size?: number;
  stream(): ByteStream;
}

/** Incremental sha256. */
export interface StreamHash {
  update(data: Uint8Array): void;
  digest(): Digest;
}
export type StreamHasher = () => StreamHash;

/** The portable incremental sha256 (pure JS); hosts pass a faster one. */
export const defaultStreamHasher: StreamHasher = () => {
  const h = sha256.create();
  return { update: (d) => void h.update(d), digest: () => `sha256:${toHex(h.digest())}` };
};

/** Manifests, indexes, configs: JSON documents held in memory, never larger than this. */
export const MAX_DOCUMENT = 4 << 20;

export const MiB = (n: number): string => (n >= 1 << 20 ? `${Math.round(n / (1 << 20))} MB` : n >= 1024 ? `${Math.round(n / 1024)} kB` : `${n} bytes`);

/** Reads a stream into memory, refusing more than `max` bytes (the rest is never read). */
export async function readCapped(src: ByteStream, max: number, what: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of src) {
    n += p.length;
    if (n > max) throw new LayerboxError(`${what} is larger than ${MiB(max)}; refusing it`, { code: 'UNSUPPORTED' });
    parts.push(p);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Passes a stream through, hashing and counting it; `check()` after the end
 * says whether it had the digest (and size, when given). Reading stops with an
 * error as soon as the size is exceeded.
 */
export function verifying(src: ByteStream, hasher: StreamHasher, expect: { digest: Digest; size?: number }, what: string): { stream: ByteStream; check(): void; readonly bytes: number } {
  const h = hasher();
  let bytes = 0, ended = false;
  const stream = (async function* () {
    for await (const p of src) {
      bytes += p.length;
      if (expect.size !== undefined && bytes > expect.size) throw new LayerboxError(`${what}: blob ${expect.digest} is longer than the ${expect.size} bytes its descriptor says`, { code: 'CORRUPT' });
      h.update(p);
      yield p;
    }
    ended = true;
  })();
  return {
    stream,
    get bytes() {
      return bytes;
    },
    check() {
      if (!ended) throw new LayerboxError(`${what}: blob ${expect.digest} was not read to its end`, { code: 'CORRUPT' });
      const got = h.digest();
      if (got !== expect.digest) throw new LayerboxError(`${what}: blob ${expect.digest} does not match its digest (its content hashes to ${got})`, { code: 'CORRUPT' });
      if (expect.size !== undefined && bytes !== expect.size) throw new LayerboxError(`${what}: blob ${expect.digest} has ${bytes} bytes, its descriptor says ${expect.size}`, { code: 'CORRUPT' });
    },
  };
}
