// The backend conformance suite (test/conformance/backend-suite.ts) against a
// REAL IndexedDB in Chromium, the same cases test/backend.test.ts runs against
// memory, a directory and fake-indexeddb; and two tabs sharing one store,
// serialised by Web Locks.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IdbBackend } from '../runtime/browser/idb-backend.js';
import { type ChromiumSession, launchChromium } from './browser/chromium.js';
import { REPO_ROOT, type TestServer, startServer } from './browser/server.js';
import { backendSuite } from './conformance/backend-suite.js';
import type { ConformanceWindow } from './conformance/browser-entry.js';

const PAGE = '/test/browser/pages/conformance.html';
const BUNDLE = 'test/.cache/conformance.js';

let server: TestServer;
let browser: ChromiumSession;

beforeAll(async () => {
  await build({
    entryPoints: [join(REPO_ROOT, 'test/conformance/browser-entry.ts')],
    outfile: join(REPO_ROOT, BUNDLE),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'silent',
  });
  server = await startServer();
  browser = await launchChromium(server);
  await browser.goto(PAGE, { waitReady: true });
});

afterEach(() => browser?.assertClean());

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('Backend conformance: indexeddb in Chromium', () => {
  it('the page runs the same cases as Node, with a real IndexedDB and Web Locks', async () => {
    const r = await browser.evaluate(() => {
      const w = window as unknown as ConformanceWindow;
      return { cases: w.conformanceCases, indexedDB: typeof indexedDB?.open, locks: typeof navigator.locks?.request, subtle: typeof crypto.subtle?.digest };
    });
    expect(r).toEqual({ cases: backendSuite.map((c) => c.name), indexedDB: 'function', locks: 'function', subtle: 'function' });
  });

  for (const c of backendSuite) {
    it(c.name, async () => {
      const results = await browser.evaluate((name: string) => (window as unknown as ConformanceWindow).runConformance([name]), c.name);
      expect(results.map((x) => x.name)).toEqual([c.name]);
      const failed = results.filter((x) => !x.ok).map((x) => `${x.name}: ${x.error}`);
      expect(failed, `failing conformance cases in Chromium:\n${failed.join('\n')}`).toEqual([]);
    });
  }
});

/** What a tab keeps on `window` between evaluations. */
type TabWindow = ConformanceWindow & { shared?: IdbBackend };

interface Section { tab: string; i: number; asked: number; enter: number; leave: number }

describe('IndexedDB store shared by two tabs', () => {
  it('Web Locks serialise the tabs\' critical sections; a blob and refs written in tab A are seen in tab B once B takes the lock', async () => {
    const tabA = browser.page;
    const tabB = await browser.context.newPage();
    try {
      await tabB.goto(server.url(PAGE), { waitUntil: 'load' });
      await tabB.waitForFunction(() => (window as unknown as TabWindow).ready === true);
      const open = (tab: Page) => tab.evaluate(async () => {
        const w = window as unknown as TabWindow;
        w.shared = await w.openIdbBackend('shared');
        return { location: w.shared.location, visibility: document.visibilityState };
      });
      const opened = [await open(tabA), await open(tabB)];
      expect(opened.map((o) => o.location)).toEqual(['indexeddb:layerbox:shared', 'indexeddb:layerbox:shared']);

      // Both tabs ask for the lock at the same moment, three sections each, every section holding it ~200 ms.
      const SECTIONS = 3, HOLD_MS = 200;
      const start = Date.now() + 500;
      const contend = (tab: Page, name: string) => tab.evaluate(async ({ name, start, n, hold }) => {
        const b = (window as unknown as TabWindow).shared!;
        const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
        await sleep(Math.max(0, start - Date.now()));
        return Promise.all(Array.from({ length: n }, (_, i) => {
          const asked = Date.now();
          return b.lock(async () => {
            const enter = Date.now();
            await sleep(hold);
            return { tab: name, i, asked, enter, leave: Date.now() };
          });
        }));
      }, { name, start, n: SECTIONS, hold: HOLD_MS });
      const [inA, inB] = await Promise.all([contend(tabA, 'A'), contend(tabB, 'B')]);
      browser.assertClean();
      const sections: Section[] = [...inA, ...inB].sort((p, q) => p.enter - q.enter || p.leave - q.leave);
      const timeline = sections.map((s) => `${s.tab}${s.i} asked +${s.asked - start} in +${s.enter - start} out +${s.leave - start}`).join('\n');
      expect(sections, timeline).toHaveLength(2 * SECTIONS);
      for (const s of sections) expect(s.leave - s.enter, timeline).toBeGreaterThanOrEqual(HOLD_MS - 5);
      for (let k = 1; k < sections.length; k++) {
        expect(sections[k]!.enter, `section ${k} entered before section ${k - 1} left:\n${timeline}`).toBeGreaterThanOrEqual(sections[k - 1]!.leave);
      }
      // The tabs really contended: the other tab asked while the first holder was inside, and waited for it.
      const first = sections[0]!;
      expect(sections.some((s) => s.tab !== first.tab && s.asked < first.leave), timeline).toBe(true);
      expect(new Set(sections.map((s) => s.tab)), timeline).toEqual(new Set(['A', 'B']));

      // Tab A writes a blob and the refs under the lock; tab B, whose digest set is from its last lock, sees them once it takes the lock.
      const data = new TextEncoder().encode(`written in tab A at ${Date.now()}`);
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      await tabA.evaluate(async ({ digest, bytes }) => {
        const b = (window as unknown as TabWindow).shared!;
        await b.lock(async () => {
          await b.putBlobs([{ digest: digest as `sha256:${string}`, data: new Uint8Array(bytes) }]);
          await b.writeRefs({ tags: { 'from-a:latest': digest as `sha256:${string}` }, boxes: {} });
        });
      }, { digest, bytes: Array.from(data) });
      const seen = await tabB.evaluate(async (d: string) => {
        const b = (window as unknown as TabWindow).shared!;
        const digest = d as `sha256:${string}`;
        const before = b.hasBlob(digest);
        const inside = await b.lock(async () => ({
          has: b.hasBlob(digest),
          bytes: Array.from(await b.getBlob(digest)),
          refs: await b.readRefs(),
        }));
        const stats = await b.stats();
        return { before, ...inside, blobs: stats.blobs };
      }, digest);
      browser.assertClean();
      expect(seen).toEqual({ before: false, has: true, bytes: Array.from(data), refs: { tags: { 'from-a:latest': digest }, boxes: {} }, blobs: 1 });

      for (const tab of [tabA, tabB]) await tab.evaluate(async () => { await (window as unknown as TabWindow).shared!.close(); });
    } finally {
      await tabB.close();
    }
  });
});
