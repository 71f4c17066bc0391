// The browser build in real Chromium (Debian's /usr/bin/chromium through
// playwright-core), driven from Node: pages come from a local cross-origin
// isolated server (test/browser/server.ts) and load dist/browser.js.
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type * as Layerbox from '../runtime/browser/index.js';
import { HARNESS_PAGE, useChromiumHarness } from './browser/chromium.js';
import { REPO_ROOT, parseRange } from './browser/server.js';

/** What the harness page puts on `window`. */
type HarnessWindow = Window & { layerbox: typeof Layerbox; ready?: boolean };

/** A committed fixture served to the page for the Range tests. */
const RANGE_FILE = '/test/wasi/build/files.wasm';


const harness = useChromiumHarness();

describe('browser build in Chromium', () => {
  it('is cross-origin isolated: SharedArrayBuffer is there', async () => {
    const r = await harness.browser().evaluate(() => ({
      isolated: globalThis.crossOriginIsolated,
      sab: typeof SharedArrayBuffer === 'function' && new SharedArrayBuffer(8).byteLength,
      layerbox: typeof (window as unknown as HarnessWindow).layerbox?.openStore,
    }));
    expect(r).toEqual({ isolated: true, sab: 8, layerbox: 'function' });
  });

  it('imports a layer, changes a box through box.fs, diffs, commits and sees the commit in a new box', async () => {
    const r = await harness.browser().evaluate(async () => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const enc = new TextEncoder();
      const dec = new TextDecoder();
      const store = lb.memoryStore();
      const big = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
      const base = await store.importLayer(
        async (b) => {
          b.addDir('/etc');
          await b.addFile('/etc/config.txt', enc.encode('mode=slow\n'));
          await b.addFile('/etc/remove-me', enc.encode('bye\n'));
          b.addDir('/data');
          await b.addFile('/data/a.txt', enc.encode('a\n'));
          await b.addFile('/data/big.bin', big);
        },
        { tag: 'base' },
      );
      const box = await store.createBox('b1', { image: 'base' });
      box.fs.writeFile('/etc/config.txt', 'mode=fast\n');
      box.fs.writeFile('/notes.txt', 'hello from chromium\n');
      box.fs.rename('/data/a.txt', '/data/b.txt');
      box.fs.unlink('/etc/remove-me');
      await box.flush();
      const diff = box.diff().map((c) => `${c.kind} ${c.path}`);
      const committed = await box.commit({ tag: 'base:v2', message: 'from the browser' });
      const after = box.diff().length;
      const box2 = await store.createBox('b2', { image: 'base:v2' });
      const big2 = box2.fs.readFile('/data/big.bin');
      return {
        base,
        committed,
        diff,
        after,
        config: dec.decode(box2.fs.readFile('/etc/config.txt')),
        notes: dec.decode(box2.fs.readFile('/notes.txt')),
        b: dec.decode(box2.fs.readFile('/data/b.txt')),
        gone: [box2.fs.exists('/data/a.txt'), box2.fs.exists('/etc/remove-me')],
        data: box2.fs.readdir('/data').map((e) => e.name).sort(),
        bigSame: big2.length === big.length && big2.every((x, i) => x === big[i]),
        diff2: box2.diff().length,
        history: (await store.history('base:v2')).map((h) => h.comment),
      };
    });
    expect(r.base).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.committed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.committed).not.toBe(r.base);
    expect(r.diff).toEqual(['C /data', 'D /data/a.txt', 'A /data/b.txt', 'C /etc', 'C /etc/config.txt', 'D /etc/remove-me', 'A /notes.txt']);
    expect(r.after).toBe(0);
    expect(r).toMatchObject({
      config: 'mode=fast\n',
      notes: 'hello from chromium\n',
      b: 'a\n',
      gone: [false, false],
      data: ['b.txt', 'big.bin'],
      bigSame: true,
      diff2: 0,
    });
    expect(r.history).toHaveLength(2);
    expect(r.history[0]).toBe('from the browser'); // newest first
  });

  it('has a real IndexedDB that keeps data across a reload and a browser restart', async () => {
    const token = `t-${Date.now()}-${Math.random()}`;
    const put = await harness.browser().evaluate(async (value: string) => {
      const db = await new Promise<IDBDatabase>((ok, ko) => {
        const rq = indexedDB.open('layerbox-test', 1);
        rq.onupgradeneeded = () => rq.result.createObjectStore('kv');
        rq.onsuccess = () => ok(rq.result);
        rq.onerror = () => ko(rq.error);
      });
      await new Promise<void>((ok, ko) => {
        const tx = db.transaction('kv', 'readwrite', { durability: 'strict' });
        tx.objectStore('kv').put({ value, bytes: new Uint8Array([1, 2, 3]) }, 'k');
        tx.oncomplete = () => ok();
        tx.onerror = () => ko(tx.error);
      });
      db.close();
      return indexedDB.constructor.name;
    }, token);
    expect(put).toBe('IDBFactory');

    const read = async (): Promise<{ value: string; bytes: number[] } | null> =>
      harness.browser().evaluate(async () => {
        const db = await new Promise<IDBDatabase>((ok, ko) => {
          const rq = indexedDB.open('layerbox-test', 1);
          rq.onupgradeneeded = () => rq.result.createObjectStore('kv');
          rq.onsuccess = () => ok(rq.result);
          rq.onerror = () => ko(rq.error);
        });
        const v = await new Promise<{ value: string; bytes: Uint8Array } | undefined>((ok, ko) => {
          const rq = db.transaction('kv').objectStore('kv').get('k');
          rq.onsuccess = () => ok(rq.result);
          rq.onerror = () => ko(rq.error);
        });
        db.close();
        return v ? { value: v.value, bytes: [...v.bytes] } : null;
      });

    await harness.browser().reload({ waitReady: true });
    expect(await read()).toEqual({ value: token, bytes: [1, 2, 3] });

    // The profile is on disk: a new browser on the same directory still has it.
    await harness.restart();
    expect(await read()).toEqual({ value: token, bytes: [1, 2, 3] });
  });

  it('serves Range requests to the page and counts the bytes it sent', async () => {
    const size = statSync(join(REPO_ROOT, RANGE_FILE)).size;
    expect(size).toBeGreaterThan(4096);
    const whole = readFileSync(join(REPO_ROOT, RANGE_FILE));
    harness.server().resetCounters();

    const get = (range: string) =>
      harness.browser().evaluate(
        async ([path, range]: [string, string]) => {
          const res = await fetch(path, { headers: { Range: range }, cache: 'no-store' });
          const body = new Uint8Array(await res.arrayBuffer());
          return {
            status: res.status,
            contentRange: res.headers.get('content-range'),
            type: res.headers.get('content-type'),
            length: body.length,
            head: [...body.subarray(0, 4)],
          };
        },
        [RANGE_FILE, range] as [string, string],
        // Chromium logs a failed load for the 416 answer.
        { allow: [/status of 416/] },
      );

    const a = await get('bytes=1000-2999');
    expect(a).toEqual({ status: 206, contentRange: `bytes 1000-2999/${size}`, type: 'application/wasm', length: 2000, head: [...whole.subarray(1000, 1004)] });
    expect(harness.server().bytesSent(RANGE_FILE)).toBe(2000);

    const b = await get(`bytes=${size - 100}-`);
    expect(b).toMatchObject({ status: 206, contentRange: `bytes ${size - 100}-${size - 1}/${size}`, length: 100 });
    expect(harness.server().bytesSent(RANGE_FILE)).toBe(2100);

    const c = await get('bytes=-8');
    expect(c).toMatchObject({ status: 206, contentRange: `bytes ${size - 8}-${size - 1}/${size}`, length: 8, head: [...whole.subarray(size - 8, size - 4)] });
    expect(harness.server().bytesSent(RANGE_FILE)).toBe(2108);

    const d = await get(`bytes=${size}-`);
    expect(d).toMatchObject({ status: 416, contentRange: `bytes */${size}`, length: 0 });
    // Should the 416 console message ever arrive after the fetch resolved, it is let through here.
    await harness.browser().evaluate(() => new Promise((ok) => setTimeout(ok, 20)), undefined, { allow: [/status of 416/] });
    expect(harness.server().bytesSent(RANGE_FILE)).toBe(2108);
    expect(harness.server().requests(RANGE_FILE)).toBe(4);

    harness.server().resetCounters(RANGE_FILE);
    expect(harness.server().bytesSent(RANGE_FILE)).toBe(0);
  });
});

describe('test server (from Node)', () => {
  const raw = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((ok, ko) => {
      const u = new URL(harness.server().origin);
      const rq = request({ host: u.hostname, port: u.port, path, headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', ko);
      });
      rq.on('error', ko);
      rq.end();
    });

  it('isolates, types and refuses paths outside the root', async () => {
    const page = await raw(HARNESS_PAGE);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect(page.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect((await raw('/dist/browser.js')).headers['content-type']).toMatch(/^text\/javascript/);
    expect((await raw(RANGE_FILE)).headers['content-type']).toBe('application/wasm');
    for (const p of ['/../../etc/passwd', '/test/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/test/%2e%2e%2f%2e%2e%2fetc/passwd']) {
      const r = await raw(p);
      expect([403, 404], p).toContain(r.status);
      expect(r.body.toString(), p).not.toContain('root:');
    }
    const missing = await raw('/no/such/file');
    expect(missing.status).toBe(404);
    expect(missing.headers['cross-origin-embedder-policy']).toBe('require-corp');
  });

  it('parses single byte ranges', () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange('bytes=0-0', 10)).toEqual({ start: 0, end: 0 });
    expect(parseRange('bytes=2-', 10)).toEqual({ start: 2, end: 9 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=-30', 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-3', 10)).toBeNull();
    expect(parseRange('bytes=0-1,3-4', 10)).toBeNull();
    expect(parseRange('items=0-1', 10)).toBeNull();
  });
});
