// Crash safety of the IndexedDB store in real Chromium: a tab commits a box
// and goes away at a random moment of the commit — the tab is closed, or the
// whole browser is killed (SIGKILL) and started again on the same profile.
// Then a fresh tab opens the same store: fsck is clean, the box and the tag
// hold the old state or the new one, never a mix, and no file the box ever
// had is lost.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Layerbox from '../runtime/browser/index.js';
import { type ChromiumSession, HARNESS_PAGE, ensureBrowserBundles, launchChromium } from './browser/chromium.js';
import { type TestServer, startServer } from './browser/server.js';

type HarnessWindow = Window & { layerbox: typeof Layerbox };
const DB = 'idb:crash-test';
const ROUNDS = 12;
/** Files each round writes: enough that a commit takes a while. */
const FILES_PER_ROUND = 2000;
const PROBES = [0, FILES_PER_ROUND / 2, FILES_PER_ROUND - 1];

let server: TestServer;
let browser: ChromiumSession;
let profileDir: string;
beforeAll(async () => {
  ensureBrowserBundles();
  server = await startServer();
  browser = await launchChromium(server);
  profileDir = browser.profileDir;
});
afterAll(async () => {
  await browser?.close({ keepProfile: true }).catch(() => {});
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  await server?.close();
});

/** SIGKILLs every process of the browser (they all name its profile directory), then starts it again on that profile. */
async function killBrowser(): Promise<void> {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes(profileDir) && cmd.includes('chrom')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
  }
  await Promise.race([browser.close({ keepProfile: true }).catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
  browser = await launchChromium(server, { profileDir });
}

async function openTab(): Promise<Page> {
  const tab = await browser.context.newPage();
  await tab.goto(server.url(HARNESS_PAGE), { waitUntil: 'load' });
  await tab.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
  return tab;
}

/** In a tab: writes round `k`'s files into box b, flushes, then starts a commit to base:k (awaited only when asked). */
async function startRound(tab: Page, k: number, awaitCommit: boolean): Promise<number> {
  return tab.evaluate(async ({ db, k, n, awaitCommit }) => {
    const w = window as unknown as HarnessWindow;
    const store = await w.layerbox.openStore(db);
    if (!(await store.backend.readRefs()).tags['base:latest']) {
      await store.importFiles([{ path: '/etc/motd', data: 'hello\n' }], { tag: 'base' });
      await store.createBox('b', { image: 'base' });
    }
    const box = await store.openBox('b');
    box.fs.mkdir(`/r${k}`);
    for (let i = 0; i < n; i++) box.fs.writeFile(`/r${k}/f${i}`, `round ${k} file ${i} `.repeat(20));
    await box.flush();
    const t0 = performance.now();
    const commit = box.commit({ tag: `base:${k}` });
    if (!awaitCommit) return 0;
    await commit;
    return performance.now() - t0;
  }, { db: DB, k, n: FILES_PER_ROUND, awaitCommit });
}

/** Reads the store back in a fresh tab: fsck, the refs, and what box b holds. */
async function inspect(rounds: number) {
  const tab = await openTab();
  try {
    return await tab.evaluate(async ({ db, rounds, probes }) => {
      const w = window as unknown as HarnessWindow;
      const store = await w.layerbox.openStore(db);
      try {
        const fsck = await store.fsck();
        const refs = await store.backend.readRefs();
        const box = await store.openBox('b');
        const missing: string[] = [];
        for (let k = 0; k < rounds; k++)
          for (const i of probes) {
            const p = `/r${k}/f${i}`;
            if (!box.fs.exists(p) || new TextDecoder().decode(await box.readFile(p)) !== `round ${k} file ${i} `.repeat(20)) missing.push(p);
          }
        return { problems: fsck.problems.map((p) => `${p.digest} ${p.problem}`), tags: refs.tags, image: refs.boxes.b!.image, diff: box.diff().length, missing };
      } finally {
        await store.backend.close();
      }
    }, { db: DB, rounds, probes: PROBES });
  } finally {
    await tab.close();
  }
}

describe('IndexedDB store when the tab or the browser goes away mid-commit', () => {
  it(`closing the tab or killing the browser at ${ROUNDS} random moments of a commit leaves the old state or the new one`, async () => {
    // Round 0 commits to the end: how long a commit takes here.
    const first = await openTab();
    const commitMs = await startRound(first, 0, true);
    await first.close();

    const outcomes = { landed: 0, kept: 0 };
    let previousImage = (await inspect(1)).image;
    for (let k = 1; k <= ROUNDS; k++) {
      const tab = await openTab();
      await startRound(tab, k, false);
      // Anywhere from the start of the commit to well past its usual end.
      await new Promise((r) => setTimeout(r, Math.random() * commitMs * 3));
      if (k % 2) await tab.close();
      else await killBrowser();
      const st = await inspect(k + 1);
      expect(st.problems, `round ${k}`).toEqual([]);
      expect(st.missing, `round ${k}`).toEqual([]);
      if (st.tags[`base:${k}`]) {
        // The new state: the box sits on the committed image with nothing left in its upper.
        expect(st.image, `round ${k}`).toBe(st.tags[`base:${k}`]);
        expect(st.diff, `round ${k}`).toBe(0);
        outcomes.landed++;
      } else {
        // The old state: the box still sits on the previous image and keeps its changes.
        expect(st.image, `round ${k}`).toBe(previousImage);
        expect(st.diff, `round ${k}`).toBeGreaterThan(0);
        outcomes.kept++;
      }
      previousImage = st.image;
    }
    browser.assertClean();
    console.log(`a commit of ${FILES_PER_ROUND} files takes ${commitMs.toFixed(0)} ms; ${ROUNDS} commits cut short: ${outcomes.landed} landed, ${outcomes.kept} kept the old state`);
    // Twelve browser restarts on a busy 2-core host take minutes: a safety net, not a measure.
  }, 600_000);
});
