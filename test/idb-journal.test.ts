// A box's journal in IndexedDB (fake-indexeddb here; test/browser-journal
// covers Chromium): appends land whole or not at all, reads work at any
// offset across segments, a replace swaps generations, a quota failure is
// EDQUOT, and a store made before journals existed is upgraded in place.
import { IDBFactory, IDBKeyRange, IDBObjectStore } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { openIdbBackend } from '../runtime/browser/idb-backend.js';
import { Errno, errnoOf } from '../src/errno.js';
import { digestOf } from '../src/digest.js';

(globalThis as { IDBKeyRange?: unknown }).IDBKeyRange ??= IDBKeyRange;
const idb = new IDBFactory();
let n = 0;
const open = (name = `j-${++n}`) => openIdbBackend(name, { indexedDB: idb, locks: null, storage: null });

async function* parts(...ps: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of ps) yield p.slice();
}
function bytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}
function concat(...ps: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(ps.reduce((k, p) => k + p.length, 0));
  let at = 0;
  for (const p of ps) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
async function rawCount(db: string, store: string): Promise<number> {
  const conn = await new Promise<IDBDatabase>((ok, no) => {
    const q = idb.open(`layerbox:${db}`);
    q.onsuccess = () => ok(q.result);
    q.onerror = () => no(q.error);
  });
  const tx = conn.transaction(store, 'readonly');
  const c = tx.objectStore(store).count();
  await new Promise((ok) => (tx.oncomplete = ok));
  conn.close();
  return c.result;
}

describe('IndexedDB box journal', () => {
  it('appends (split in segments) read back at any offset, and the checkpoint side sees them', async () => {
    const name = `j-${++n}`;
    const b = await open(name);
    const log = await b.openJournalAsync('box1');
    expect(log.size).toBe(0);
    const a = bytes(100, 1), big = bytes((1 << 20) + 12345, 2), c = bytes(7, 3);
    await log.append(parts(a), true);
    await log.append(parts(big.subarray(0, 1000), big.subarray(1000)), false);
    await log.append(parts(c), true);
    const all = concat(a, big, c);
    expect(log.size).toBe(all.length);
    for (const [off, len] of [[0, 100], [50, 2000], [(1 << 20) - 10, 40], [all.length - 7, 7], [0, all.length]] as const) expect(await log.read(off, len)).toEqual(all.subarray(off, off + len));
    await expect(log.read(all.length - 1, 2)).rejects.toThrow(/past its end/);
    const src = (await b.readJournal('box1'))!;
    expect(src.size).toBe(all.length);
    expect(await src.read(1 << 20, 1000)).toEqual(all.subarray(1 << 20, (1 << 20) + 1000));
    expect(await b.readJournal('other')).toBeNull();
    await b.close();
  });

  it('a failed append leaves the size and the bytes as they were; the next append overwrites what it left; quota is EDQUOT', async () => {
    const b = await open();
    const log = await b.openJournalAsync('box1');
    const a = bytes(1000, 5);
    await log.append(parts(a), true);
    // The third segment of a 3-segment append fails as a full quota would.
    const proto = IDBObjectStore.prototype as unknown as { put: (this: IDBObjectStore, v: unknown, k?: IDBValidKey) => IDBRequest };
    const original = proto.put;
    let calls = 0;
    proto.put = function (value, key) {
      if (++calls === 3) throw new DOMException('quota', 'QuotaExceededError');
      return original.call(this, value, key);
    };
    let err: unknown;
    try {
      await log.append(parts(bytes(3 << 20, 9)), true);
    } catch (e) {
      err = e;
    } finally {
      proto.put = original;
    }
    expect(errnoOf(err)).toBe(Errno.DQUOT);
    expect((err as Error).message).toMatch(/quota is full/);
    expect(log.size).toBe(1000);
    const again = await b.readJournal('box1');
    expect(again!.size).toBe(1000);
    const c = bytes(300, 7);
    await log.append(parts(c), true);
    expect(await log.read(0, 1300)).toEqual(concat(a, c));
    await b.close();
  });

  it('replace swaps in a new generation atomically; remove leaves nothing; a scratch log goes on close', async () => {
    const name = `j-${++n}`;
    const b = await open(name);
    const log = await b.openJournalAsync('box1');
    await log.append(parts(bytes(3 << 20, 1)), true);
    const fresh = bytes(5000, 4);
    await log.replace(parts(fresh.subarray(0, 10), fresh.subarray(10)));
    expect(log.size).toBe(5000);
    expect(await log.read(0, 5000)).toEqual(fresh);
    expect(await rawCount(name, 'journal')).toBe(2); // its two parts; the old generation's three segments are gone
    await log.remove();
    expect(await b.readJournal('box1')).toBeNull();
    expect(await rawCount(name, 'journal')).toBe(0);
    const scratch = await b.openJournalAsync(null);
    await scratch.append(parts(bytes(2 << 20, 3)), false);
    expect(await rawCount(name, 'journal')).toBe(2);
    await scratch.close();
    expect([await rawCount(name, 'journal'), await rawCount(name, 'journalHeads')]).toEqual([0, 0]);
    await b.close();
  });

  it('upgrades a store made before journals existed, keeping its blobs', async () => {
    const name = `j-${++n}`;
    // The version-1 layout: blobs and meta only.
    const data = bytes(100, 8);
    const digest = digestOf(data);
    await new Promise<void>((ok, no) => {
      const q = idb.open(`layerbox:${name}`);
      q.onupgradeneeded = () => {
        q.result.createObjectStore('blobs').put(data, digest);
        q.result.createObjectStore('meta').put({ magic: 'layerbox-idb', version: 1 }, 'store');
      };
      q.onsuccess = () => {
        q.result.close();
        ok();
      };
      q.onerror = () => no(q.error);
    });
    const b = await open(name);
    expect(await b.getBlob(digest)).toEqual(data);
    const log = await b.openJournalAsync('box1');
    await log.append(parts(bytes(10, 1)), true);
    expect((await b.readJournal('box1'))!.size).toBe(10);
    expect(await b.verify()).toEqual([]);
    await b.close();
  });
});
