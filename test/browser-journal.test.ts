// A box's journal in IndexedDB, written by a guest worker through the
// bridge, in real Chromium: a full quota reaches the guest as an errno and
// loses nothing that was synced; an fsync that returned survives a reload of
// the page mid-run; and a guest writing far more than the box's cache keeps
// the browser's memory near the cache, not near what it wrote.
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type * as Layerbox from '../runtime/browser/index.js';
import { HARNESS_PAGE, useChromiumHarness } from './browser/chromium.js';

type HarnessWindow = Window & { layerbox: typeof Layerbox; said?: string; runDone?: string };
const SYNC = '/test/durability/guests/build/sync.wasm';
const STREAM = '/test/browser/guests/build/stream.wasm';
const MiB = 1 << 20;
/** The origin's quota while the guest fills its box. */
const QUOTA = 8 * MiB;

const harness = useChromiumHarness();

/** The guests' generator (test/durability/guests/sync.c), as page code: the first `n` bytes they write. */
function genSource(): string {
  return `(n) => { const b = new Uint8Array(n); let x = 12345; for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = (x >>> 16) & 0xff; } return b; }`;
}

/** Pids of the browser's renderer processes (descendants of the process that names its profile). */
function rendererPids(profileDir: string): number[] {
  const info = new Map<number, { ppid: number; cmd: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'))![1]);
      info.set(Number(d), { ppid, cmd });
    } catch {
      // gone meanwhile
    }
  }
  const roots = new Set([...info].filter(([, p]) => p.cmd.includes(profileDir) && !p.cmd.includes('--type=')).map(([pid]) => pid));
  const under = (pid: number): boolean => {
    for (let p = info.get(pid)?.ppid; p && p > 1; p = info.get(p)?.ppid) if (roots.has(p)) return true;
    return false;
  };
  return [...info].filter(([pid, p]) => p.cmd.includes('--type=renderer') && under(pid)).map(([pid]) => pid);
}

const status = (pid: number, field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

describe('box journals in IndexedDB (Chromium)', () => {
  it('a guest filling a box under a low quota gets EDQUOT/ENOSPC, the run fails clearly, and the box keeps what was synced', async () => {
    const b = harness.browser();
    // Before this origin touches its storage: Chromium takes an origin's quota when it first opens its IndexedDB.
    const origin = new URL(b.page.url()).origin;
    const cdp = await b.context.newCDPSession(b.page);
    const quota = QUOTA;
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: quota });
    await b.evaluate(async () => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('idb:quota-test');
      await store.importFiles([{ path: '/etc/motd', data: 'hello\n' }], { tag: 'base' });
      await store.createBox('fill', { image: 'base' });
      const spare = await store.createBox('spare', { image: 'base' });
      spare.fs.writeFile('/spare.txt', 'spare');
      await spare.flush();
      await store.createBox('gone', { image: 'base' });
      await store.backend.close();
    });

    const run = await b.evaluate(async ({ sync }) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('idb:quota-test');
      const box = await store.openBox('fill');
      const wasm = new Uint8Array(await (await fetch(sync)).arrayBuffer());
      let said = '';
      let error: { message: string; code?: string; errno?: number } | null = null;
      let exitCode: number | null = null;
      try {
        exitCode = (await box.run(wasm, { args: ['sync', 'fill', '/big.bin', String(128 << 10), String(64 << 20)], stdout: (d) => void (said += new TextDecoder().decode(d)) })).exitCode;
      } catch (e) {
        const le = e as Layerbox.LayerboxError;
        error = { message: le.message, code: le.code, errno: le.errno };
      }
      const est = await navigator.storage.estimate();
      return { said, error, exitCode, usage: est.usage!, quota: est.quota! };
    }, { sync: SYNC });
    const m = /^failed: (write|fsync): (ENOSPC|EDQUOT) \(([^)]*)\)\nsynced: (\d+)\n$/.exec(run.said);
    expect(m, `the guest reports a write or fsync that failed with EDQUOT or ENOSPC; it said ${JSON.stringify(run.said)}`).not.toBeNull();
    const synced = Number(m![4]);
    expect(synced, 'some steps were synced before the quota ran out').toBeGreaterThan(0);
    // The run fails with one clear error naming the box and the cause (its last changes could not be stored), or the guest's own exit code.
    if (run.error) {
      expect(run.error.message).toMatch(/^box fill: its (last )?changes could not be stored: (disk quota exceeded|no space left on device)/);
      expect(run.error.message.split('\n')).toHaveLength(1);
      expect(run.error.code).toBe('QUOTA');
    } else expect(run.exitCode).toBe(3);
    console.log(`quota ${quota} bytes: the guest's ${m![1]} failed with ${m![2]} after ${synced} bytes synced; the run ${run.error ? `failed: ${run.error.message}` : `exited ${run.exitCode}`}; usage ${run.usage} of ${run.quota}`);

    // Reloaded, with the quota still low: the box opens and holds every synced byte; fsck is clean; reset, delete and export work.
    await b.reload({ waitReady: true });
    const download = b.page.waitForEvent('download');
    download.catch(() => {}); // awaited below; a failure before then is the evaluate's
    const after = await b.evaluate(async ({ gen, synced }) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const expected = (new Function(`return ${gen}`)() as (n: number) => Uint8Array)(synced);
      const store = await lb.openStore('idb:quota-test');
      const box = await store.openBox('fill');
      const big = await box.readFile('/big.bin');
      let same = big.length >= synced;
      for (let i = 0; same && i < synced; i++) same = big[i] === expected[i];
      const fsck = (await store.fsck()).problems.map((p) => `${p.digest} ${p.problem}`);
      await store.resetBox('spare');
      const spareAfter = (await store.openBox('spare')).fs.exists('/spare.txt');
      await store.removeBox('gone');
      const boxes = Object.keys((await store.backend.readRefs()).boxes).sort();
      // Export: the box as a tar, downloaded.
      await box.load();
      const tar = box.exportTar();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([tar as Uint8Array<ArrayBuffer>], { type: 'application/x-tar' }));
      a.download = 'fill.tar';
      document.body.append(a);
      a.click();
      await store.backend.close();
      return { size: big.length, same, fsck, spareAfter, boxes, tarBytes: tar.length };
    }, { gen: genSource(), synced });
    expect(after.same, `/big.bin holds the ${synced} synced bytes (it has ${after.size})`).toBe(true);
    expect(after.fsck).toEqual([]);
    expect(after.spareAfter).toBe(false);
    expect(after.boxes).toEqual(['fill', 'spare']);
    const file = await (await download).path();
    expect(statSync(file).size).toBe(after.tarBytes);
    expect(after.tarBytes).toBeGreaterThan(synced);

    // Quota back: the box runs, commits, and fsck is clean (no tagged image names a missing chunk).
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
    await cdp.detach();
    const healed = await b.evaluate(async ({ sync, synced }) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('idb:quota-test');
      const box = await store.openBox('fill');
      const wasm = new Uint8Array(await (await fetch(sync)).arrayBuffer());
      let said = '';
      const r = await box.run(wasm, { args: ['sync', 'write', '/after.bin', String(1 << 20)], stdout: (d) => void (said += new TextDecoder().decode(d)) });
      const image = await box.commit({ tag: 'base:filled' });
      const fresh = await store.createBox('check', { image: 'base:filled' });
      const sizes = [(await fresh.readFile('/big.bin')).length >= synced, (await fresh.readFile('/after.bin')).length];
      const fsck = (await store.fsck()).problems.map((p) => `${p.digest} ${p.problem}`);
      const tags = Object.keys((await store.backend.readRefs()).tags).sort();
      await store.backend.close();
      return { code: r.exitCode, said, image, sizes, fsck, tags };
    }, { sync: SYNC, synced });
    expect(healed.code, healed.said).toBe(0);
    expect(healed.sizes).toEqual([true, 1 << 20]);
    expect(healed.fsck).toEqual([]);
    expect(healed.tags).toEqual(['base:filled', 'base:latest']);
  }, 240_000);

  it("keeps what a guest's fsync made durable when the page is reloaded before the run ends (and no other tab runs the box meanwhile)", async () => {
    const b = harness.browser();
    await b.evaluate(async ({ sync }) => {
      const w = window as unknown as HarnessWindow;
      const store = await w.layerbox.openStore('idb:synced-reload');
      await store.importFiles([{ path: '/etc/motd', data: 'hello\n' }], { tag: 'base' });
      const box = await store.createBox('h', { image: 'base' });
      const wasm = new Uint8Array(await (await fetch(sync)).arrayBuffer());
      w.said = '';
      // Never ends by itself: it writes /kept.bin, fsyncs, writes /lost.bin, says "synced" and blocks.
      void box.run(wasm, { args: ['sync', 'hold', '/kept.bin', String(300_000), '/lost.bin'], stdin: (async function* () { await new Promise(() => {}); })(), stdout: (d) => void (w.said += new TextDecoder().decode(d)) });
    }, { sync: SYNC });
    await b.page.waitForFunction(() => (window as unknown as HarnessWindow).said?.includes('synced'), undefined, { timeout: 60_000 });
    // Meanwhile another tab cannot run the box: one run writes its journal.
    const other = await b.context.newPage();
    await other.goto(harness.server().url(HARNESS_PAGE), { waitUntil: 'load' });
    await other.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    const refused = await other.evaluate(async ({ sync }) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('idb:synced-reload');
      const box = await store.openBox('h');
      const wasm = new Uint8Array(await (await fetch(sync)).arrayBuffer());
      try {
        await box.run(wasm, { args: ['sync', 'write', '/other.bin', '10'] });
        return 'ran';
      } catch (e) {
        return (e as Error).message;
      } finally {
        await store.backend.close();
      }
    }, { sync: SYNC });
    await other.close();
    expect(refused).toMatch(/^box h is in use by another run/);
    await b.reload({ waitReady: true });
    const seen = await b.evaluate(async ({ gen }) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const expected = (new Function(`return ${gen}`)() as (n: number) => Uint8Array)(300_000);
      const store = await lb.openStore('idb:synced-reload');
      const box = await store.openBox('h');
      const kept = await box.readFile('/kept.bin');
      const same = kept.length === expected.length && kept.every((v, i) => v === expected[i]);
      const out = { same, size: kept.length, lost: box.fs.exists('/lost.bin'), fsck: (await store.fsck()).problems.length };
      await store.backend.close();
      return out;
    }, { gen: genSource() });
    expect(seen).toEqual({ same: true, size: 300_000, lost: false, fsck: 0 });
  }, 120_000);

  it("an ephemeral box spills to a scratch log in IndexedDB that is gone when the run ends; one a dead tab left is swept", async () => {
    const r = await harness.browser().evaluate(async ({ stream }) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('idb:scratch-test', { cacheBytes: 4 << 20 });
      await store.importFiles([{ path: '/tmp' }], { tag: 'base' });
      await store.backend.close();
      /** The journal records in the database, read with IndexedDB itself. */
      const raw = async (plant: boolean): Promise<number> => {
        const db = await new Promise<IDBDatabase>((ok, no) => {
          const q = indexedDB.open('layerbox:scratch-test');
          q.onsuccess = () => ok(q.result);
          q.onerror = () => no(q.error);
        });
        const tx = db.transaction(['journal', 'journalHeads'], 'readwrite');
        if (plant) {
          // What a tab killed mid-run leaves: a scratch log nobody holds.
          tx.objectStore('journal').put(new Uint8Array(1000), ['\u0000scratch:dead', 0, 0]);
          tx.objectStore('journalHeads').put({ gen: 0, size: 1000 }, '\u0000scratch:dead');
        }
        const a = tx.objectStore('journal').count();
        const b = tx.objectStore('journalHeads').count();
        await new Promise((ok) => (tx.oncomplete = ok));
        db.close();
        return a.result + b.result;
      };
      const planted = await raw(true);
      const again = await lb.openStore('idb:scratch-test', { cacheBytes: 4 << 20 });
      const box = await again.ephemeralBox('base');
      const wasm = new Uint8Array(await (await fetch(stream)).arrayBuffer());
      let said = '';
      const res = await box.run(wasm, { args: ['stream', '/tmp/big.bin', '24'], stdout: (d) => void (said += new TextDecoder().decode(d)) });
      await again.backend.close();
      return { code: res.exitCode, said, planted, left: await raw(false) };
    }, { stream: STREAM });
    expect(r).toEqual({ code: 0, said: `written: ${24 * MiB}\n`, planted: 2, left: 0 });
  }, 120_000);

  it('a guest writing 600 MiB without fsync in a worker keeps the renderer far below what it wrote', async () => {
    const b = harness.browser();
    // Well past the cache, so that what grows with the bytes written shows: the renderer's own memory (its
    // isolates, the blob cache, garbage not collected yet) is about 130-150 MiB whatever is written (263 MiB peak for 300 MiB, 280 for 600).
    const WRITE_MIB = 600;
    // A tab of its own: a renderer process whose memory is this run's (a new tab gets a new process here).
    const known = new Set(rendererPids(b.profileDir));
    const tab = await b.context.newPage();
    await tab.goto(harness.server().url(HARNESS_PAGE), { waitUntil: 'load' });
    await tab.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    const fresh = rendererPids(b.profileDir).filter((p) => !known.has(p));
    const pids = fresh.length ? fresh : [...known];
    expect(pids.length, 'the browser has renderer processes').toBeGreaterThan(0);
    // Peak RSS from here on (writing 5 to clear_refs resets a process's high-water mark).
    const before = new Map(pids.map((p) => [p, status(p, 'VmRSS')]));
    for (const p of pids) writeFileSync(`/proc/${p}/clear_refs`, '5');
    const r = await tab.evaluate(async ({ stream, mib }) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('idb:memory-test', { cacheBytes: 16 << 20 });
      await store.importFiles([{ path: '/tmp' }], { tag: 'base' });
      const box = await store.createBox('m', { image: 'base' });
      const wasm = new Uint8Array(await (await fetch(stream)).arrayBuffer());
      let said = '';
      const t0 = performance.now();
      const res = await box.run(wasm, { args: ['stream', '/tmp/big.bin', String(mib)], stdout: (d) => void (said += new TextDecoder().decode(d)) });
      const ms = performance.now() - t0;
      const size = box.fs.stat('/tmp/big.bin').size;
      await store.removeBox('m');
      await store.gc();
      await store.backend.close();
      return { code: res.exitCode, said, size, ms };
    }, { stream: STREAM, mib: WRITE_MIB });
    expect(r.code, r.said).toBe(0);
    expect(r.size).toBe(WRITE_MIB * MiB);
    const peaks = pids.map((p) => ({ pid: p, before: before.get(p)!, peak: status(p, 'VmHWM') }));
    await tab.close();
    const peak = Math.max(...peaks.map((p) => p.peak));
    console.log(`a guest wrote ${WRITE_MIB} MiB without fsync (cache 16 MiB) in ${(r.ms / 1000).toFixed(1)} s; renderer peak RSS ${(peak / MiB).toFixed(0)} MiB ` +
      `(${peaks.map((p) => `pid ${p.pid}: ${(p.before / MiB).toFixed(0)} -> peak ${(p.peak / MiB).toFixed(0)} MiB`).join(', ')})`);
    const grew = Math.max(...peaks.map((p) => p.peak - p.before));
    expect(grew, 'the renderer (page and worker) grows far less than the bytes written').toBeLessThan((WRITE_MIB * MiB) / 2.5);
    expect(peak, 'the renderer (page and worker) peaks far below the bytes written').toBeLessThan((WRITE_MIB * MiB) / 2);
  }, 300_000);
});
