import { FsError, memoryStore, type Store } from '../src/index.js';
import { closeSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';

const enc = new TextEncoder();
const dec = new TextDecoder();
export const bytes = (s: string) => enc.encode(s);
export const text = (b: Uint8Array) => dec.decode(b);

/** A clock that ticks one second per call: deterministic timestamps. */
export function tickClock(start = 1_700_000_000n * 1_000_000_000n): () => bigint {
  let t = start;
  return () => (t += 1_000_000_000n);
}

/** A memory store with an image `base` built from a map of path -> content (string) or null (directory). */
export async function storeWithImage(files: Record<string, string | null | { symlink: string }>, opts: { chunkSize?: number } = {}): Promise<Store> {
  const store = memoryStore({ chunkSize: opts.chunkSize ?? 8, clock: tickClock() });
  await store.importLayer(async (b) => {
    for (const [p, v] of Object.entries(files)) {
      if (v === null) b.addDir(p);
      else if (typeof v === 'string') await b.addFile(p, bytes(v));
      else b.addSymlink(p, v.symlink);
    }
  }, { tag: 'base' });
  return store;
}

/** Runs a filesystem call: 'ok', or the errno name it failed with (other errors are rethrown). */
export function code(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
}

/** Fills a (small, test-mounted) disk through `filler` until `free` bytes are left. */
export function fillDisk(filler: string, free: number): void {
  const fd = openSync(filler, 'w');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          writeSync(fd, buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
    ftruncateSync(fd, Math.max(0, fstatSync(fd).size - free));
  } finally {
    closeSync(fd);
  }
}
