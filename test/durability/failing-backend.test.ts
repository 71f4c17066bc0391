// Point 1 of "a durable, bounded write path", at the library level: a backend
// whose every write fails with ENOSPC while a flag is set. The guest gets
// ENOSPC from fsync, the run (or the flush after it) rejects with that errno,
// the persisted box is unchanged; once writes work again the same Box flushes
// everything the guest wrote (dirty data stayed dirty), fsck is clean and
// commit works.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Box, type NodeStore, openStore } from '../../runtime/node/index.js';
import { guestBytes } from './guest-bytes.js';

const SYNC = new Uint8Array(readFileSync(resolve('test/durability/guests/build/sync.wasm')));
/** WASI's ENOSPC. */
const WASI_ENOSPC = 51;

const stream = guestBytes;

/** A host error as Node's fs gives it for a full disk. */
function enospc(what: string): Error {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${what}`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
}

interface JournalLog {
  readonly size: number;
  append(parts: readonly Uint8Array[], durable: boolean): void;
  read(offset: number, length: number): Uint8Array;
  replace(parts: Uint8Array[]): void;
  remove(): void;
  close(): void;
}

/**
 * Makes every write path of the store's backend fail while `failing.on`:
 * putBlobs, writeRefs, and the appends and rewrites of box journals where the
 * backend has them. Reads are untouched.
 */
function failOnDemand(store: NodeStore): { on: boolean; attempts: number } {
  const failing = { on: false, attempts: 0 };
  const b = store.backend as unknown as Record<string, unknown>;
  for (const name of ['putBlobs', 'writeRefs']) {
    const orig = (b[name] as (...a: unknown[]) => Promise<unknown>).bind(b);
    b[name] = async (...a: unknown[]) => {
      if (failing.on) {
        failing.attempts++;
        throw enospc(name);
      }
      return orig(...a);
    };
  }
  if (typeof b.openJournal === 'function') {
    const open = (b.openJournal as (box: string) => JournalLog).bind(b);
    b.openJournal = (box: string): JournalLog => {
      const j = open(box);
      return {
        get size() {
          return j.size;
        },
        append(parts, durable) {
          if (failing.on) {
            failing.attempts++;
            throw enospc(`appending to the journal of ${box}`);
          }
          j.append(parts, durable);
        },
        read: (offset, length) => j.read(offset, length),
        replace(parts) {
          if (failing.on) {
            failing.attempts++;
            throw enospc(`rewriting the journal of ${box}`);
          }
          j.replace(parts);
        },
        remove: () => j.remove(),
        close: () => j.close(),
      };
    };
  }
  return failing;
}

/** Every file of a box's merged view, path -> sha256. */
function files(box: Box): Record<string, string> {
  const out: Record<string, string> = {};
  // An unreadable file shows as its error, so a comparison names it.
  const sha = (p: string) => {
    try {
      return createHash('sha256').update(box.fs.readFile(p)).digest('hex');
    } catch (e) {
      return `unreadable: ${(e as Error).message}`;
    }
  };
  const walk = (dir: string) => {
    for (const e of box.fs.readdir(dir)) {
      if (e.name === '.' || e.name === '..') continue;
      const p = `${dir === '/' ? '' : dir}/${e.name}`;
      const st = box.fs.lstat(p);
      if (st.type === 'dir') walk(p);
      else if (st.type === 'file') out[p] = sha(p);
      else out[p] = st.type;
    }
  };
  walk('/');
  return out;
}

/** What a fresh store instance (another process, later) sees of the box. */
async function persisted(dir: string, name: string): Promise<Record<string, string>> {
  const s = await openStore(dir);
  try {
    return files(await s.openBox(name));
  } finally {
    await s.backend.close();
  }
}

let tmp: string;
let dir: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lb-failing-backend-'));
  dir = join(tmp, 'store');
  mkdirSync(join(tmp, 'tree/etc'), { recursive: true });
  writeFileSync(join(tmp, 'tree/etc/motd'), 'hello from the image\n');
  const s = await openStore(dir);
  await s.importDirectory(join(tmp, 'tree'), { tag: 'base' });
  await s.createBox('fb', { image: 'base' });
  await s.createBox('fc', { image: 'base' });
  await s.backend.close();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a backend whose writes fail with ENOSPC on demand', () => {
  it('the guest gets ENOSPC, the run reports it, nothing persisted changes; with space back the box flushes all it wrote', async () => {
    const store = await openStore(dir);
    // The worker runner opens the store again in its own thread, out of this wrapper's reach: run on this thread.
    store.runner = undefined;
    const failing = failOnDemand(store);
    const box = await store.openBox('fb');
    const out: string[] = [];
    const stdout = (b: Uint8Array) => out.push(Buffer.from(b).toString());

    // A file stored while writes work.
    const first = await box.run(SYNC, { args: ['sync', 'write', '/before.bin', '5000'], stdout });
    expect(first.exitCode, out.join('')).toBe(0);
    const before = await persisted(dir, 'fb');
    expect(Object.keys(before)).toContain('/before.bin');

    // Writes fail: the guest's fsync, then the run's final flush.
    out.length = 0;
    failing.on = true;
    const SIZE = 300_000;
    let err: unknown = null;
    let exitCode: number | undefined;
    try {
      exitCode = (await box.run(SYNC, { args: ['sync', 'write', '/data.bin', String(SIZE)], stdout })).exitCode;
      await box.flush();
    } catch (e) {
      err = e;
    }
    expect.soft(out.join(''), 'what the guest saw from fsync').toMatch(/^failed: fsync: ENOSPC \(No space left on device\)\n$/);
    if (exitCode !== undefined) expect.soft(exitCode, 'the guest exits 3 on its failed fsync').toBe(3);
    expect.soft(failing.attempts, 'writes attempted while the backend fails').toBeGreaterThan(0);
    expect(err, 'box.run or the box.flush after it rejects while writes fail').not.toBeNull();
    const e = err as { errno?: number; code?: string; message?: string };
    expect.soft(e.errno === WASI_ENOSPC || e.code === 'QUOTA', `the error carries errno ${WASI_ENOSPC} (ENOSPC) or code QUOTA: got errno ${e.errno}, code ${e.code}, message ${e.message}`).toBe(true);
    // Nothing persisted changed: another store instance sees the box as before.
    expect(await persisted(dir, 'fb'), 'the persisted box while writes fail').toEqual(before);
    // The guest's view still has the file (it is dirty, not lost).
    expect(box.fs.exists('/data.bin'), 'the file is still in the box in memory').toBe(true);

    // Space is back: the same Box flushes what the guest wrote, byte for byte.
    failing.on = false;
    await box.flush();
    const after = await persisted(dir, 'fb');
    const data = stream(SIZE);
    expect(after, 'a fresh store instance after the flush').toEqual({ ...before, '/data.bin': createHash('sha256').update(data).digest('hex') });
    const fsck = await store.fsck();
    expect(fsck.problems, 'fsck after the flush').toEqual([]);
    const image = await box.commit({ tag: 'fb:1' });
    expect((await store.fsck()).problems, 'fsck after the commit').toEqual([]);
    const s2 = await openStore(dir);
    try {
      expect((await s2.fsck()).problems, 'fsck of a fresh instance').toEqual([]);
      const eph = await s2.ephemeralBox('fb:1');
      expect(eph.image).toBe(image);
      expect(Buffer.from(await eph.readFile('/data.bin')).equals(data), 'the committed image holds the file').toBe(true);
    } finally {
      await s2.backend.close();
    }
    await store.backend.close();
  }, 60_000);

  it('a commit after a failed flush never tags an image fsck rejects', async () => {
    const store = await openStore(dir);
    store.runner = undefined;
    const failing = failOnDemand(store);
    const box = await store.openBox('fc');
    const SIZE = 200_000;
    failing.on = true;
    let err: unknown = null;
    try {
      await box.run(SYNC, { args: ['sync', 'write', '/data.bin', String(SIZE)], stdout: () => {} });
      await box.flush();
    } catch (e) {
      err = e;
    }
    expect(err, 'the run or its flush rejects while writes fail').not.toBeNull();
    failing.on = false;
    // Straight to commit, no flush first: it stores what was never stored, or refuses and tags nothing.
    let image: string | null = null;
    try {
      image = await box.commit({ tag: 'fc:1' });
    } catch (e) {
      expect((e as Error).message, 'a refusal is one line').not.toMatch(/\n/);
    }
    const fresh = await openStore(dir);
    try {
      expect((await fresh.fsck()).problems, 'fsck after the commit').toEqual([]);
      const tags = (await fresh.backend.readRefs()).tags;
      if (image === null) expect(tags['fc:1'], 'a refused commit tags nothing').toBeUndefined();
      else {
        expect(tags['fc:1']).toBe(image);
        const eph = await fresh.ephemeralBox('fc:1');
        const got = Buffer.from(await eph.readFile('/data.bin').catch((e: Error) => new TextEncoder().encode(`unreadable: ${e.message}`)));
        expect(got.equals(stream(SIZE)), `the committed image's /data.bin (${got.length} bytes${got.length < 300 ? `: ${got}` : ''})`).toBe(true);
      }
    } finally {
      await fresh.backend.close();
      await store.backend.close();
    }
  }, 60_000);
});
