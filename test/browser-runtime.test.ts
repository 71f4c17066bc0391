// The browser runtime in real Chromium: IndexedDB boxes that survive a reload,
// guests in a Web Worker (streamed output, timeouts), images read lazily over
// HTTP — and the same steps in Node give the same diff.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type * as Layerbox from '../runtime/browser/index.js';
import { memoryStore } from '../src/index.js';
import { useChromiumHarness } from './browser/chromium.js';
import { REPO_ROOT } from './browser/server.js';
import { openStore } from '../runtime/node/index.js';

type HarnessWindow = Window & { layerbox: typeof Layerbox };
const GUEST = '/test/wasi/build/guest.wasm';
const HTTP_STORE = '/test/.cache/http-store';

/** The files of the image both sides start from. */
const FILES = [
  { path: '/etc/motd', data: 'hello\n' },
  { path: '/etc/remove-me', data: 'bye\n' },
  { path: '/work' },
];

/** The steps both sides run: a guest writes, a file goes, a directory is renamed. */
async function steps(box: Layerbox.Box, wasm: Uint8Array): Promise<number[]> {
  const codes: number[] = [];
  codes.push((await box.run(wasm, { args: ['guest', 'write', '/work/notes.txt', 'from the guest'] })).exitCode);
  codes.push((await box.run(wasm, { args: ['guest', 'write', '/etc/motd', 'changed\n'] })).exitCode);
  box.fs.unlink('/etc/remove-me');
  box.fs.rename('/work', '/srv');
  await box.flush();
  return codes;
}

const harness = useChromiumHarness();

describe('browser runtime in Chromium', () => {
  it('keeps an IndexedDB box across a reload, commits it, and diffs exactly like Node', async () => {
    const first = await harness.browser().evaluate(
      async ({ files, guest, stepsSrc }) => {
        const lb = (window as unknown as HarnessWindow).layerbox;
        const run = new Function(`return ${stepsSrc}`)() as typeof steps;
        const store = await lb.openStore('idb:reload-test');
        await store.importFiles(files, { tag: 'base' });
        const box = await store.createBox('b1', { image: 'base' });
        const wasm = new Uint8Array(await (await fetch(guest)).arrayBuffer());
        const codes = await run(box, wasm);
        await store.backend.close();
        return { codes, worker: typeof store.runner === 'function' };
      },
      { files: FILES, guest: GUEST, stepsSrc: steps.toString() },
    );
    expect(first).toEqual({ codes: [0, 0], worker: true });

    await harness.browser().reload({ waitReady: true });
    const after = await harness.browser().evaluate(async () => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const dec = new TextDecoder();
      const store = await lb.openStore('idb:reload-test');
      const box = await store.openBox('b1');
      const notes = dec.decode(await box.readFile('/srv/notes.txt'));
      const diff = box.diff();
      const image = await box.commit({ tag: 'base:v2', message: 'from the browser' });
      const fresh = await store.createBox('b2', { image: 'base:v2' });
      const seen = { notes: dec.decode(await fresh.readFile('/srv/notes.txt')), motd: dec.decode(await fresh.readFile('/etc/motd')), gone: fresh.fs.exists('/etc/remove-me') };
      const onBase = await store.createBox('b3', { image: 'base' });
      const history = (await store.history('base:v2')).map((h) => h.comment);
      await store.backend.close();
      return { notes, diff, image, seen, baseHasNotes: onBase.fs.exists('/srv/notes.txt'), history };
    });
    expect(after.notes).toBe('from the guest');
    expect(after.seen).toEqual({ notes: 'from the guest', motd: 'changed\n', gone: false });
    expect(after.baseHasNotes).toBe(false);
    expect(after.history).toEqual(['from the browser', '']);

    // The same steps in Node give the same diff.
    const node = memoryStore();
    await node.importFiles(FILES, { tag: 'base' });
    const nbox = await node.createBox('b1', { image: 'base' });
    expect(await steps(nbox as unknown as Layerbox.Box, new Uint8Array(readFileSync(join(REPO_ROOT, GUEST))))).toEqual([0, 0]);
    expect(after.diff).toEqual(nbox.diff());
    expect(after.diff).toEqual([
      { kind: 'C', path: '/etc' },
      { kind: 'C', path: '/etc/motd' },
      { kind: 'D', path: '/etc/remove-me' },
      { kind: 'A', path: '/srv' },
      { kind: 'A', path: '/srv/notes.txt' },
      { kind: 'D', path: '/work' },
    ]);
  });

  it('streams output from the worker and stops a guest that never returns; the page stays responsive', async () => {
    const r = await harness.browser().evaluate(async (guest) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('memory:');
      await store.importFiles([{ path: '/tmp' }], { tag: 'base' });
      const box = await store.createBox('t', { image: 'base' });
      const wasm = new Uint8Array(await (await fetch(guest)).arrayBuffer());
      let ticks = 0;
      const timer = setInterval(() => ticks++, 20);
      // The guest prints "written", then spins until the timeout stops it: output that arrives at all was streamed.
      // A host too busy to start the guest within the timeout gets a run with a longer one.
      let res: Awaited<ReturnType<typeof box.run>>;
      let written = false;
      for (let timeoutMs = 1500; ; timeoutMs *= 2) {
        res = await box.run(wasm, {
          args: ['guest', 'lose', '/tmp/x', 'data'],
          timeoutMs,
          stdout: (b) => {
            if (new TextDecoder().decode(b).includes('written')) written = true;
          },
        });
        if (written || timeoutMs > 30_000) break;
      }
      clearInterval(timer);
      const ok = await box.run(wasm, { args: ['guest', 'exit', '7'] });
      return { exitCode: res.exitCode, stderr: new TextDecoder().decode(res.stderr), written, ticks, next: ok.exitCode };
    }, GUEST);
    expect(r.exitCode).toBe(124);
    expect(r.stderr).toMatch(/guest stopped: no exit after [\d.]+ s \(timeout\)/);
    expect(r.written, 'output streamed from a guest that never returned').toBe(true);
    // The page's event loop ran meanwhile (any tick proves it; how many depends on the host's load).
    expect(r.ticks).toBeGreaterThan(0);
    expect(r.next).toBe(7);
  });

  it('writes what the guest fsynced to IndexedDB even when the timeout stops it', async () => {
    const r = await harness.browser().evaluate(async (guest) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('idb:fsync-test');
      await store.importFiles([{ path: '/tmp' }], { tag: 'base' });
      const box = await store.createBox('d', { image: 'base' });
      const wasm = new Uint8Array(await (await fetch(guest)).arrayBuffer());
      // Judged once the guest said "written" (its write, and for keep its fsync, done before the timeout); a host too busy gets a longer timeout.
      const untilWritten = async (args: string[]) => {
        for (let timeoutMs = 1000; ; timeoutMs *= 2) {
          let written = false;
          const r = await box.run(wasm, { args, timeoutMs, stdout: (b) => void (written ||= new TextDecoder().decode(b).includes('written')) });
          if (written || timeoutMs > 30_000) return r;
        }
      };
      const kept = await untilWritten(['guest', 'keep', '/kept.txt', 'durable']);
      const lost = await untilWritten(['guest', 'lose', '/lost.txt', 'volatile']);
      await store.backend.close();
      const again = await (await lb.openStore('idb:fsync-test')).openBox('d');
      return { codes: [kept.exitCode, lost.exitCode], diff: again.diff(), kept: new TextDecoder().decode(await again.readFile('/kept.txt')) };
    }, GUEST);
    expect(r).toEqual({ codes: [124, 124], diff: [{ kind: 'A', path: '/kept.txt' }], kept: 'durable' });
  });

  it('feeds stdin while the guest runs: it blocks reading until the page sends more', async () => {
    const r = await harness.browser().evaluate(async (guest) => {
      const lb = (window as unknown as HarnessWindow).layerbox;
      const store = await lb.openStore('memory:');
      await store.importFiles([{ path: '/tmp' }], { tag: 'base' });
      const box = await store.createBox('s', { image: 'base' });
      const wasm = new Uint8Array(await (await fetch(guest)).arrayBuffer());
      const enc = new TextEncoder();
      const seen: string[] = [];
      async function* typed() {
        for (const line of ['first line\n', 'second line\n']) {
          await new Promise((r) => setTimeout(r, 150));
          yield enc.encode(line);
        }
      }
      const res = await box.run(wasm, { args: ['guest', 'stdin'], stdin: typed(), stdout: (b) => seen.push(new TextDecoder().decode(b)) });
      return { exitCode: res.exitCode, out: seen.join('') };
    }, GUEST);
    expect(r).toEqual({ exitCode: 0, out: 'first line\nsecond line\n' });
  });

  it('reads a 1 MiB file out of a 100 MiB layer served over HTTP while fetching less than 2 MiB', async () => {
    const dir = join(REPO_ROOT, HTTP_STORE);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const small = randomBytes(1 << 20);
    const store = await openStore(join(dir));
    await store.importLayer(async (b) => {
      const pieces: Uint8Array[] = [];
      for (let i = 0; i < 100; i++) pieces.push(randomBytes(1 << 20));
      await b.addFile('/big.bin', pieces);
      await b.addFile('/data/small.bin', small);
    }, { tag: 'remote' });
    await store.backend.close();
    await writeFile(join(dir, '.gitignore'), '*\n');
    harness.server().resetCounters();

    const r = await harness.browser().evaluate(
      async ({ url, guest }) => {
        const lb = (window as unknown as HarnessWindow).layerbox;
        const store = await lb.openStore('memory:', { remote: url });
        const box = await store.createBox('lazy', { image: 'remote' });
        const wasm = new Uint8Array(await (await fetch(guest)).arrayBuffer());
        const res = await box.run(wasm, { args: ['guest', 'cat', '/data/small.bin'] });
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', res.stdout as Uint8Array<ArrayBuffer>));
        return { exitCode: res.exitCode, size: res.stdout.length, sha: Array.from(digest, (x) => x.toString(16).padStart(2, '0')).join('') };
      },
      { url: HTTP_STORE, guest: GUEST },
    );
    expect(r.exitCode).toBe(0);
    expect(r.size).toBe(1 << 20);
    expect(r.sha).toBe(createHash('sha256').update(small).digest('hex'));
    let fetched = 0;
    for (const f of ['layerbox-store.json', 'refs.json', 'packs.json']) fetched += harness.server().bytesSent(`${HTTP_STORE}/${f}`);
    const packs = JSON.parse(readFileSync(join(dir, 'packs.json'), 'utf8')).packs as string[];
    for (const p of packs) fetched += harness.server().bytesSent(`${HTTP_STORE}/packs/${p}`);
    expect(fetched).toBeGreaterThan(1 << 20);
    expect(fetched).toBeLessThan(2 << 20);
  });
});
