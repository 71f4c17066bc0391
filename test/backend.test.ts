import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Digest, digestOf } from '../src/digest.js';
import { LayerboxError } from '../src/errno.js';
import { type Backend, type RefsDoc, emptyRefs } from '../src/store/backend.js';
import { MemoryBackend } from '../src/store/memory.js';
import { DirBackend, openDirBackend } from '../runtime/node/dir-backend.js';
import { IDBFactory, IDBObjectStore } from 'fake-indexeddb';
import { IdbBackend, type LockManagerLike, openIdbBackend } from '../runtime/browser/idb-backend.js';
import { Mutex } from '../src/store/backend.js';
import { backendSuite, deepEqual, makeAsserts } from './conformance/backend-suite.js';

const enc = new TextEncoder();
const blob = (s: string) => { const data = enc.encode(s); return { digest: digestOf(data), data }; };

const tmpRoots: string[] = [];
/** A fresh (not yet existing) directory path under os.tmpdir(), removed after the file's tests. */
function tmpStorePath(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'layerbox-backend-'));
  tmpRoots.push(root);
  return path.join(root, 'store');
}
afterAll(() => { for (const r of tmpRoots) fs.rmSync(r, { recursive: true, force: true }); });

/** The shared conformance suite (test/conformance/backend-suite.ts), one `it` per case, run against every backend. */
function conformance(name: string, make: () => Promise<Backend>) {
  describe(`Backend conformance: ${name}`, () => {
    for (const c of backendSuite) it(c.name, () => c.run(make, makeAsserts()));
  });
}

conformance('memory', async () => new MemoryBackend());
conformance('dir', () => openDirBackend(tmpStorePath()));

/** One fake IndexedDB for the file; every test uses fresh database names. */
const idb = new IDBFactory();
let idbCounter = 0;
const idbName = () => `test-${++idbCounter}`;
const openIdb = (name: string, opts: Parameters<typeof openIdbBackend>[1] = {}) => openIdbBackend(name, { indexedDB: idb, ...opts });
conformance('indexeddb', () => openIdb(idbName()));

/** The suite's own assertions also run in the browser, where no vitest backs them: they must catch what they claim to. */
describe('conformance asserts', () => {
  it('eq is deep, compares bytes by content and fails with what and both values', () => {
    const bytes = (...xs: number[]) => new Uint8Array(xs);
    expect(deepEqual({ a: [1, bytes(1, 2)], b: null }, { a: [1, bytes(1, 2)], b: null })).toBe(true);
    expect(deepEqual(bytes(1, 2), Buffer.from([1, 2]))).toBe(true);
    expect(deepEqual(new Uint8Array(new Uint8Array([9, 1, 2]).buffer, 1), bytes(1, 2))).toBe(true);
    for (const [a, b] of [
      [bytes(1, 2), bytes(1, 3)], [bytes(1, 2), bytes(1, 2, 3)], [bytes(1), [1]], [{ a: 1 }, { a: 1, b: undefined }], [{ a: 1 }, { b: 1 }],
      [[1, 2], [2, 1]], [[], {}], [0, -0], [NaN, 0], ['1', 1], [null, {}], [{ a: { b: [1] } }, { a: { b: [2] } }],
    ] as Array<[unknown, unknown]>) {
      expect(deepEqual(a, b), `${String(a)} vs ${String(b)}`).toBe(false);
      expect(deepEqual(b, a)).toBe(false);
    }
    expect(deepEqual(NaN, NaN)).toBe(true);
    const t = makeAsserts();
    t.eq([bytes(1)], [bytes(1)], 'same');
    expect(() => t.eq({ n: bytes(1, 2) }, { n: bytes(1, 3) }, 'the blob')).toThrow(/^the blob: expected \{"n":"<Uint8Array\(2\) 01 03>"\}, got \{"n":"<Uint8Array\(2\) 01 02>"\}$/);
    t.ok(1, 'truthy');
    expect(() => t.ok(0, 'the flag')).toThrow('the flag: expected a truthy value, got 0');
  });

  it('throws and rejects demand an error containing the substring, and return it', async () => {
    const t = makeAsserts();
    const e = new LayerboxError('blob sha256:ab is missing');
    expect(t.throws(() => { throw e; }, 'sha256:ab')).toBe(e);
    expect(() => t.throws(() => { throw e; }, 'sha256:cd')).toThrow(/does not contain "sha256:cd"/);
    expect(() => t.throws(() => 1, 'x')).toThrow(/nothing was thrown/);
    expect(await t.rejects(Promise.reject(e), 'missing')).toBe(e);
    await expect(t.rejects(Promise.reject(e), 'corrupt')).rejects.toThrow(/does not contain "corrupt"/);
    await expect(t.rejects(Promise.resolve(5), 'x')).rejects.toThrow(/it resolved with 5/);
  });
});

/** Finds the only occurrence of `marker` in `file`. */
function offsetOf(file: string, marker: string): number {
  const buf = fs.readFileSync(file), at = buf.indexOf(marker);
  expect(at).toBeGreaterThan(0);
  expect(buf.indexOf(marker, at + 1)).toBe(-1);
  return at;
}

function packFiles(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'packs')).map((n) => path.join(dir, 'packs', n));
}

describe('DirBackend', () => {
  it('keeps the host file count small: 1000 blobs in one batch make one pack', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    const blobs = Array.from({ length: 1000 }, (_, i) => blob(`blob number ${i} `.repeat(1 + (i % 7))));
    await b.lock(() => b.putBlobs(blobs));
    await b.writeRefs(emptyRefs());
    const s = await b.stats();
    expect(s.blobs).toBe(1000);
    expect(s.files).toBeLessThan(10);
    expect(packFiles(dir)).toHaveLength(1);
    for (const i of [0, 1, 499, 999]) expect(b.readBlobSync(blobs[i]!.digest)).toEqual(blobs[i]!.data);
    await b.close();
  });

  it('a new instance sees the same blobs and refs', async () => {
    const dir = tmpStorePath();
    const a = await openDirBackend(dir);
    const x = blob('persisted'), y = blob('also persisted');
    await a.putBlobs([x]);
    await a.putBlobs([y]);
    const refs: RefsDoc = { tags: { 't:1': x.digest }, boxes: {} };
    await a.writeRefs(refs);
    await a.close();
    const b = await openDirBackend(dir, { create: false });
    expect(b).toBeInstanceOf(DirBackend);
    expect(b.hasBlob(x.digest) && b.hasBlob(y.digest)).toBe(true);
    expect(b.readBlobSync(y.digest)).toEqual(y.data);
    expect(await b.readRefs()).toEqual(refs);
    expect((await b.stats()).blobs).toBe(2);
    await b.close();
  });

  it('rescans packs written by another instance before reporting a blob missing', async () => {
    const dir = tmpStorePath();
    const a = await openDirBackend(dir), b = await openDirBackend(dir);
    const x = blob('written by a');
    await a.putBlobs([x]);
    expect(b.readBlobSync(x.digest)).toEqual(x.data);
    expect(b.hasBlob(x.digest)).toBe(true);
    // and a gc by one instance leaves the other able to read the rewritten pack
    const y = blob('dropped by a');
    await a.putBlobs([y]);
    const z = blob('kept, in the same pack as w'), w = blob('dropped, shares a pack with z');
    await a.putBlobs([z, w]);
    expect(b.readBlobSync(y.digest)).toEqual(y.data);
    await a.lock(() => a.deleteBlobs((d) => d !== y.digest && d !== w.digest));
    await b.close(); // drop cached descriptors of removed packs
    expect(b.readBlobSync(z.digest)).toEqual(z.data);
    expect(() => b.readBlobSync(w.digest)).toThrow(w.digest);
    await a.close(); await b.close();
  });

  it('reports a corrupt blob by digest while its pack neighbours still read', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    const bad = blob('MARKER-bad-blob contents'), good = blob('a good neighbour');
    await b.putBlobs([good, bad, blob('another one')]);
    const [pack] = packFiles(dir);
    const at = offsetOf(pack!, 'MARKER-bad-blob');
    const fd = fs.openSync(pack!, 'r+');
    fs.writeSync(fd, Buffer.from('m'), 0, 1, at);
    fs.closeSync(fd);
    expect(() => b.readBlobSync(bad.digest)).toThrow(bad.digest);
    expect(() => b.readBlobSync(bad.digest)).toThrow(/corrupt/);
    await expect(b.getBlob(bad.digest)).rejects.toThrow(bad.digest);
    expect(b.readBlobSync(good.digest)).toEqual(good.data);
    const problems = await b.verify();
    expect(problems.map((p) => p.digest)).toEqual([bad.digest]);
    expect(problems[0]!.where).toBe(`packs/${path.basename(pack!)}`);
    await b.close();
  });

  it('skips a broken pack on open and names it in verify', async () => {
    const dir = tmpStorePath();
    const a = await openDirBackend(dir);
    const x = blob('fine');
    await a.putBlobs([x]);
    await a.close();
    const junk = path.join(dir, 'packs', `${'ab'.repeat(32)}.pack`);
    fs.writeFileSync(junk, 'LBXPACK\0garbage that is long enough to have a footer');
    const b = await openDirBackend(dir);
    expect(b.readBlobSync(x.digest)).toEqual(x.data);
    const problems = await b.verify();
    expect(problems).toHaveLength(1);
    expect(problems[0]!.where).toBe(`packs/${path.basename(junk)}`);
    expect(problems[0]!.problem).toContain(path.basename(junk));
    await b.close();
  });

  it('refuses an unknown store version, a foreign directory, bad refs, and a missing store without create', async () => {
    const dir = tmpStorePath();
    await (await openDirBackend(dir)).close();
    fs.writeFileSync(path.join(dir, 'layerbox-store.json'), JSON.stringify({ magic: 'layerbox-store', version: 99 }));
    await expect(openDirBackend(dir)).rejects.toThrow(/unknown format version 99/);
    fs.writeFileSync(path.join(dir, 'layerbox-store.json'), JSON.stringify({ magic: 'something-else', version: 1 }));
    await expect(openDirBackend(dir)).rejects.toThrow(LayerboxError);

    const foreign = tmpStorePath();
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    await expect(openDirBackend(foreign)).rejects.toThrow(/not empty/);
    await expect(openDirBackend(tmpStorePath(), { create: false })).rejects.toThrow(/no layerbox store/);

    const c = await openDirBackend(tmpStorePath());
    fs.writeFileSync(path.join(c.location, 'refs.json'), JSON.stringify({ magic: 'layerbox-refs', version: 2, tags: {}, boxes: {} }));
    await expect(c.readRefs()).rejects.toThrow(/unknown version 2/);
    await c.close();
  });

  it('takes over a stale lock left by a dead process', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    fs.writeFileSync(path.join(dir, 'lock'), '999999\n');
    fs.writeFileSync(path.join(dir, 'tmp', '999999-leftover'), 'half a pack');
    expect(await b.lock(async () => fs.readFileSync(path.join(dir, 'lock'), 'utf8'))).toBe(`${process.pid}\n`);
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]); // a dead writer's temp file is cleaned
    await b.close();
  });

  it('excludes another process while held, and lets it in after release', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    const { spawn } = await import('node:child_process');
    // The child takes the lock file the way DirBackend does (create with 'wx', retry), saying when it waits and when it got in.
    const script = `const fs=require('fs');const f=process.argv[1];let said=false;
      (function go(){try{fs.writeFileSync(f,process.pid+'\\n',{flag:'wx'});fs.unlinkSync(f);console.log('got');}
      catch{if(!said){said=true;console.log('waiting');}setTimeout(go,10);}})();`;
    const events: string[] = [];
    let childExit: Promise<unknown> | undefined;
    await b.lock(async () => {
      const child = spawn(process.execPath, ['-e', script, path.join(dir, 'lock')], { stdio: ['ignore', 'pipe', 'inherit'] });
      childExit = new Promise((r) => child.on('exit', r));
      const waiting = new Promise<void>((r) => child.stdout!.on('data', (c: Buffer) => {
        events.push(...c.toString().trim().split('\n'));
        if (events.includes('waiting')) r();
      }));
      await waiting;
      await new Promise((r) => setTimeout(r, 100));
      events.push('released');
    });
    await childExit;
    expect(events).toEqual(['waiting', 'released', 'got']);

    // The other way round: a lock file naming a live process keeps us out until that process removes it.
    const holder = spawn(process.execPath, ['-e', `const fs=require('fs');const f=process.argv[1];fs.writeFileSync(f,process.pid+'\\n',{flag:'wx'});
      console.log('held');process.stdin.once('data',()=>{fs.unlinkSync(f);process.exit(0);});`, path.join(dir, 'lock')], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise((r) => holder.on('exit', r));
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    let released = false;
    const entered = b.lock(async () => {
      expect(released, 'took the lock while a live process held it').toBe(true);
      expect(fs.readFileSync(path.join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
    });
    // Time for a wrong lock to get in early; a right one waits for the release however long this is.
    await new Promise((r) => setTimeout(r, 200));
    released = true;
    holder.stdin!.end('go\n');
    await entered;
    await exited;
    await b.close();
  });
});

describe('DirBackend gc folds small packs', () => {
  it('keeps the host file count flat over many flushes', async () => {
    const { mkdtemp, rm, readdir } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'layerbox-fold-'));
    try {
      const b = await openDirBackend(dir);
      const all: Array<{ digest: Digest; data: Uint8Array }> = [];
      for (let i = 0; i < 30; i++) {
        const data = new TextEncoder().encode(`flush number ${i}`);
        const blob = { digest: digestOf(data), data };
        all.push(blob);
        await b.lock(() => b.putBlobs([blob]));
      }
      // Merged as they were written (geometrically: O(log) packs), yet more than one for gc to fold.
      const written = (await readdir(join(dir, 'packs'))).length;
      expect(written).toBeGreaterThan(1);
      expect(written).toBeLessThanOrEqual(Math.log2(30) + 1);
      const dead = new Set(all.slice(0, 10).map((x) => x.digest));
      await b.lock(() => b.deleteBlobs((d) => !dead.has(d)));
      expect((await readdir(join(dir, 'packs'))).length).toBe(1);
      for (const x of all.slice(10)) expect(new TextDecoder().decode(b.readBlobSync(x.digest))).toBe(new TextDecoder().decode(x.data));
      expect(b.hasBlob(all[0]!.digest)).toBe(false);
      expect(await b.verify()).toEqual([]);
      await b.close();
      const again = await openDirBackend(dir);
      expect((await again.stats()).blobs).toBe(20);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---- IndexedDB ----

/** Raw IndexedDB access to a store's database, around the backend, to inspect or damage it. */
async function rawDb(name: string): Promise<IDBDatabase> {
  const req = idb.open(`layerbox:${name}`);
  return new Promise((resolve, reject) => { req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error); });
}
function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => { tx.oncomplete = () => resolve(); tx.onabort = () => reject(tx.error); });
}
async function rawPut(name: string, store: string, key: string, value: unknown): Promise<void> {
  const db = await rawDb(name);
  const tx = db.transaction(store, 'readwrite');
  tx.objectStore(store).put(value, key);
  await done(tx);
  db.close();
}
async function rawGet(name: string, store: string, key: string): Promise<unknown> {
  const db = await rawDb(name);
  const tx = db.transaction(store, 'readonly');
  const req = tx.objectStore(store).get(key);
  await done(tx);
  db.close();
  return req.result;
}
async function rawKeys(name: string, store: string): Promise<string[]> {
  const db = await rawDb(name);
  const tx = db.transaction(store, 'readonly');
  const req = tx.objectStore(store).getAllKeys();
  await done(tx);
  db.close();
  return (req.result as string[]).slice().sort();
}

/**
 * Makes `IDBObjectStore.put` fail with QuotaExceededError on its `nth` call
 * (counting from 1) until the returned function restores it. `sync`: put
 * throws (as a browser may when it knows at once); otherwise the request
 * fails when it runs and the transaction aborts with that error (as a browser
 * does when the write does not fit).
 */
function failPut(nth: number, sync: boolean, error = () => new DOMException('quota', 'QuotaExceededError')): () => void {
  const proto = IDBObjectStore.prototype as unknown as { put: (this: IDBObjectStore, v: unknown, k?: IDBValidKey) => IDBRequest };
  const original = proto.put;
  let calls = 0;
  proto.put = function (value, key) {
    if (++calls !== nth) return original.call(this, value, key);
    if (sync) throw error();
    // fake-indexeddb binds the record-storing operation when put is called: make that one throw.
    const raw = (this as unknown as { _rawObjectStore: { storeRecord: unknown } })._rawObjectStore;
    const storeRecord = raw.storeRecord;
    raw.storeRecord = () => { throw error(); };
    try { return original.call(this, value, key); } finally { raw.storeRecord = storeRecord; }
  };
  return () => { proto.put = original; };
}

const refsOf = (d: Digest): RefsDoc => ({ tags: { 'base:latest': d }, boxes: { dev: { image: d, upper: null, created: '2024-01-01T00:00:00Z' } } });

describe('IdbBackend', () => {
  it('a new instance sees the same blobs and refs', async () => {
    const name = idbName();
    const a = await openIdb(name);
    expect(a).toBeInstanceOf(IdbBackend);
    expect(a.location).toBe(`indexeddb:layerbox:${name}`);
    const x = blob('persisted'), y = blob('also persisted');
    await a.putBlobs([x]);
    await a.putBlobs([y]);
    await a.writeRefs(refsOf(x.digest));
    await a.close();
    expect(await rawKeys(name, 'meta')).toEqual(['refs', 'store']);
    expect(await rawGet(name, 'meta', 'store')).toEqual({ magic: 'layerbox-idb', version: 1 });
    expect(await rawGet(name, 'meta', 'refs')).toEqual({ magic: 'layerbox-refs', version: 1, ...refsOf(x.digest) });

    const b = await openIdb(name);
    expect(b.hasBlob(x.digest) && b.hasBlob(y.digest)).toBe(true);
    expect(await b.getBlob(y.digest)).toEqual(y.data);
    expect(await b.readRefs()).toEqual(refsOf(x.digest));
    expect(await b.stats()).toEqual({ blobs: 2, bytes: x.data.length + y.data.length });
    expect(await b.verify()).toEqual([]);
    await b.close();
  });

  it('refuses an unknown store version, a foreign database and unknown refs', async () => {
    const name = idbName();
    await (await openIdb(name)).close();
    await rawPut(name, 'meta', 'store', { magic: 'layerbox-idb', version: 99 });
    const refused = openIdb(name);
    await expect(refused).rejects.toThrow(LayerboxError);
    await expect(refused).rejects.toThrow(/unknown format version 99 \(this layerbox reads version 1\)/);
    await rawPut(name, 'meta', 'store', { magic: 'something-else', version: 1 });
    await expect(openIdb(name)).rejects.toThrow(/not a layerbox store \(bad magic/);

    // A database of the same name made by someone else: no object stores of ours.
    const foreign = idbName();
    await new Promise<void>((resolve, reject) => {
      const req = idb.open(`layerbox:${foreign}`, 1);
      req.onupgradeneeded = () => { req.result.createObjectStore('keyval'); };
      req.onsuccess = () => { req.result.close(); resolve(); };
      req.onerror = () => reject(req.error);
    });
    await expect(openIdb(foreign)).rejects.toThrow(/not a layerbox store \(it lacks the object stores/);

    const c = await openIdb(idbName());
    await rawPut(c.name, 'meta', 'refs', { magic: 'layerbox-refs', version: 2, tags: {}, boxes: {} });
    await expect(c.readRefs()).rejects.toThrow(/unknown version 2/);
    expect((await c.verify()).map((p) => p.where)).toEqual(['meta/refs']);
    await c.close();
    await expect(openIdbBackend('x', { indexedDB: undefined })).rejects.toThrow(/no IndexedDB/);
  });

  for (const sync of [true, false]) {
    it(`reports a full quota (${sync ? 'put throws' : 'the transaction aborts'}) and leaves the store as it was`, async () => {
      const name = idbName();
      const b = await openIdb(name);
      const old = blob('stored before');
      await b.putBlobs([old]);
      await b.writeRefs(refsOf(old.digest));
      const batch = [blob('first of the batch'), blob('second of the batch'), blob('third of the batch')];
      const bytes = batch.reduce((n, v) => n + v.data.length, 0);
      let restore = failPut(2, sync);
      const put = b.putBlobs([old, ...batch]).finally(restore);
      await expect(put).rejects.toThrow(LayerboxError);
      await expect(put).rejects.toThrow(`the browser's storage quota is full: IndexedDB refused to store a batch of 3 blobs (${bytes} bytes)`);
      await expect(put).rejects.toThrow(/nothing of it was written/);
      const err = await put.then(() => null, (e: Error) => e);
      expect((err?.cause as DOMException | undefined)?.name).toBe('QuotaExceededError');
      for (const v of batch) {
        expect(b.hasBlob(v.digest)).toBe(false);
        expect(() => b.readBlobSync(v.digest)).toThrow(/missing/);
      }
      expect(await rawKeys(name, 'blobs')).toEqual([old.digest]);

      restore = failPut(1, sync);
      const refs = b.writeRefs({ tags: {}, boxes: {} }).finally(restore);
      await expect(refs).rejects.toThrow(/storage quota is full: IndexedDB refused to store the refs document \(\d+ bytes\)/);
      expect(await b.readRefs()).toEqual(refsOf(old.digest));

      // the store still works, and a fresh instance sees exactly what was there before
      await b.putBlobs(batch);
      expect(await b.stats()).toEqual({ blobs: 4, bytes: bytes + old.data.length });
      await b.close();
      const again = await openIdb(name);
      expect(await again.readRefs()).toEqual(refsOf(old.digest));
      expect(await again.verify()).toEqual([]);
      await again.close();
    });
  }

  it('commitBatch writes blobs and refs in one transaction, all or nothing', async () => {
    const name = idbName();
    const b = await openIdb(name);
    const base = blob('base');
    await b.commitBatch([base], refsOf(base.digest));
    expect(await rawKeys(name, 'blobs')).toEqual([base.digest]);
    expect(await b.readRefs()).toEqual(refsOf(base.digest));

    const next = [blob('commit blob 1'), blob('commit blob 2'), blob('commit blob 3')];
    const newRefs: RefsDoc = { tags: { 'base:latest': next[2]!.digest }, boxes: {} };
    // puts: 3 blobs, then the refs record (4th). Fail in the middle (sync), then at the very last put (async).
    for (const [nth, sync] of [[2, true], [4, false], [4, true]] as const) {
      const restore = failPut(nth, sync);
      const c = b.commitBatch([base, ...next], newRefs).finally(restore);
      await expect(c).rejects.toThrow(/storage quota is full: IndexedDB refused to store a commit of 3 blobs and the refs document \(\d+ bytes\)/);
      expect(await rawKeys(name, 'blobs')).toEqual([base.digest]);
      expect(await b.readRefs()).toEqual(refsOf(base.digest));
      for (const v of next) expect(b.hasBlob(v.digest)).toBe(false);
    }
    // any other failure aborts it as well, and is reported as what it is
    for (const sync of [true, false]) {
      const restore = failPut(3, sync, () => new DOMException('disk on fire', 'UnknownError'));
      const c = b.commitBatch(next, newRefs).finally(restore);
      await expect(c).rejects.toThrow(LayerboxError);
      await expect(c).rejects.toThrow(/failed: UnknownError: disk on fire; nothing of it was written/);
      expect(await rawKeys(name, 'blobs')).toEqual([base.digest]);
      expect(await b.readRefs()).toEqual(refsOf(base.digest));
    }

    await b.commitBatch(next, newRefs);
    expect(await b.readRefs()).toEqual(newRefs);
    for (const v of next) expect(b.readBlobSync(v.digest)).toEqual(v.data);
    await b.close();
    const again = await openIdb(name);
    expect((await again.listBlobs()).length).toBe(4);
    expect(await again.readRefs()).toEqual(newRefs);
    await again.close();
  });

  it('readBlobSync serves blobs loaded in this session; preload loads them', async () => {
    const name = idbName();
    const a = await openIdb(name);
    const x = blob('to preload'), y = blob('also to preload'), z = blob('read with getBlob');
    await a.putBlobs([x, y, z]);
    expect(a.readBlobSync(x.digest)).toEqual(x.data); // written in this session
    await a.close();

    const b = await openIdb(name);
    expect(b.hasBlob(x.digest)).toBe(true);
    expect(() => b.readBlobSync(x.digest)).toThrow(LayerboxError);
    expect(() => b.readBlobSync(x.digest)).toThrow(`blob ${x.digest} is not loaded`);
    expect(() => b.readBlobSync(x.digest)).toThrow(/must be loaded first \(await preload/);
    await b.preload([x.digest, y.digest, x.digest]);
    expect(b.readBlobSync(x.digest)).toEqual(x.data);
    expect(b.readBlobSync(y.digest)).toEqual(y.data);
    expect(() => b.readBlobSync(z.digest)).toThrow(/not loaded/);
    expect(await b.getBlob(z.digest)).toEqual(z.data);
    expect(b.readBlobSync(z.digest)).toEqual(z.data);
    const missing = blob('never stored').digest;
    await expect(b.preload([missing])).rejects.toThrow(`blob ${missing} is missing`);
    await b.close();

    // The cache is an LRU bounded by bytes.
    const small = await openIdb(name, { cacheBytes: y.data.length + z.data.length });
    await small.preload([x.digest, y.digest]);
    await small.getBlob(z.digest); // evicts the least recently used: x
    expect(() => small.readBlobSync(x.digest)).toThrow(/not loaded/);
    expect(small.readBlobSync(y.digest)).toEqual(y.data);
    expect(small.readBlobSync(z.digest)).toEqual(z.data);
    expect(small.cacheStats.bytes).toBeLessThanOrEqual(small.cacheStats.maxBytes);
    await expect(small.preload([x.digest, y.digest, z.digest])).rejects.toThrow(/larger cacheBytes/);
    await small.close();
  });

  it('names a corrupt blob in getBlob and verify', async () => {
    const name = idbName();
    const b = await openIdb(name);
    const bad = blob('this blob will be damaged'), good = blob('a good neighbour');
    await b.putBlobs([good, bad, blob('another one')]);
    await rawPut(name, 'blobs', bad.digest, enc.encode('this blob will be dAmaged'));
    await expect(b.getBlob(bad.digest)).rejects.toThrow(LayerboxError);
    await expect(b.getBlob(bad.digest)).rejects.toThrow(`blob ${bad.digest} is corrupt: its content does not match its digest`);
    expect(() => b.readBlobSync(bad.digest)).toThrow(/not loaded/); // dropped from the cache once found corrupt
    expect(await b.getBlob(good.digest)).toEqual(good.data);
    await expect(b.preload([bad.digest])).rejects.toThrow(bad.digest);
    const problems = await b.verify();
    expect(problems).toEqual([{ digest: bad.digest, where: `blobs/${bad.digest}`, problem: 'content does not match its digest' }]);

    // a record that is not bytes at all, and a key that is not a digest
    await rawPut(name, 'blobs', good.digest, 'a string');
    await rawPut(name, 'blobs', 'junk', new Uint8Array(1));
    await expect(b.getBlob(good.digest)).rejects.toThrow(`blob ${good.digest} is corrupt: its IndexedDB record is not bytes`);
    expect((await b.verify()).map((p) => p.where).sort()).toEqual([`blobs/${bad.digest}`, `blobs/${good.digest}`, 'blobs/junk'].sort());
    await b.close();
  });

  it('locks with the given lock manager, named after the store', async () => {
    const mutex = new Mutex();
    const calls: string[] = [];
    const locks: LockManagerLike = { request: (name, options, cb) => { calls.push(`${name} ${options.mode}`); return mutex.run(cb); } };
    const name = idbName();
    const b = await openIdb(name, { locks });
    const log: string[] = [];
    const section = (id: string) => b.lock(async () => { log.push(`${id} in`); await new Promise((r) => setTimeout(r, 5)); log.push(`${id} out`); return id; });
    expect(await Promise.all([section('a'), section('b')])).toEqual(['a', 'b']);
    expect(log).toEqual(['a in', 'a out', 'b in', 'b out']);
    expect(calls).toEqual([`layerbox:${name} exclusive`, `layerbox:${name} exclusive`]);
    await b.close();
  });

  it('sees blobs another instance (tab) wrote or removed once it takes the lock', async () => {
    const name = idbName();
    const a = await openIdb(name), b = await openIdb(name);
    const x = blob('from the other tab');
    await a.lock(() => a.putBlobs([x]));
    expect(b.hasBlob(x.digest)).toBe(false);
    expect(await b.getBlob(x.digest)).toEqual(x.data); // getBlob always asks IndexedDB
    await b.lock(async () => {});
    expect(b.hasBlob(x.digest)).toBe(true);
    await a.lock(() => a.deleteBlobs(() => false));
    await b.lock(async () => {});
    expect(b.hasBlob(x.digest)).toBe(false);
    expect(() => b.readBlobSync(x.digest)).toThrow(/missing/);
    await a.close(); await b.close();
  });

  it('asks once for persistent storage and reports the answer', async () => {
    let asked = 0;
    const yes = await openIdb(idbName(), { storage: { persist: async () => { asked++; return true; } } });
    expect(asked).toBe(1);
    expect(yes.persisted).toBe(true);
    await yes.close();
    const failing = await openIdb(idbName(), { storage: { persist: () => Promise.reject(new Error('denied')) } });
    expect(failing.persisted).toBeUndefined();
    await failing.close();
    const throwing = await openIdb(idbName(), { storage: { persist: () => { throw new Error('no'); } } });
    expect(throwing.persisted).toBeUndefined();
    await throwing.close();
    const none = await openIdb(idbName(), { storage: {} });
    expect(none.persisted).toBeUndefined();
    await none.close();
  });

  it('refuses to work once closed, with a clear error', async () => {
    const b = await openIdb(idbName());
    const x = blob('cached');
    await b.putBlobs([x]);
    await b.close();
    await expect(b.getBlob(x.digest)).rejects.toThrow(/is closed \(close\(\) was called\)/);
    await expect(b.putBlobs([blob('late')])).rejects.toThrow(/is closed/);
    expect(b.readBlobSync(x.digest)).toEqual(x.data);
  });
});
