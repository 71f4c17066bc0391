/**
 * Debian's Chromium driven by playwright-core, for tests that run in a real
 * browser. The browser is always /usr/bin/chromium (scripts/ensure-chromium.sh
 * installs it); nothing here downloads one. A persistent context keeps a real
 * profile directory, so IndexedDB, caches and storage survive page reloads.
 *
 * Every page's console errors and uncaught exceptions are collected: `evaluate`
 * and `goto` throw when the page reported any (unless a test lets them through
 * with `allow`), and `assertClean()` is for an `afterEach`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type ConsoleMessage, type Page, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { REPO_ROOT, type TestServer, startServer } from './server.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** The arguments TOOLCHAIN.md lists for Debian's Chromium on these machines. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The harness page: `window.layerbox` is `dist/browser.js`, `window.ready` once loaded. */
export const HARNESS_PAGE = '/test/browser/pages/harness.html';

export interface PageProblem {
  kind: 'console' | 'pageerror' | 'crash';
  text: string;
  url: string;
}

export interface EvaluateOptions {
  /** Console errors or exceptions matching one of these do not fail the call (they are dropped). */
  allow?: RegExp[];
}

export interface ChromiumSession {
  readonly context: BrowserContext;
  /** The page tests drive (the persistent context's first tab). */
  readonly page: Page;
  /** The profile directory (removed by `close` unless told to keep it). */
  readonly profileDir: string;
  /** Opens a server path in the page; with `waitReady`, waits until `window.ready === true`. */
  goto(path: string, opts?: EvaluateOptions & { waitReady?: boolean }): Promise<void>;
  /** Opens the harness page and waits for `window.layerbox`. */
  openHarness(): Promise<void>;
  /** Reloads the page (same profile); with `waitReady`, waits for `window.ready` again. */
  reload(opts?: EvaluateOptions & { waitReady?: boolean }): Promise<void>;
  /** Runs `fn(arg)` in the page and returns its (structured-cloneable) result; throws on page errors. */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A, opts?: EvaluateOptions): Promise<R>;
  /** Problems reported since the last `takeProblems`. */
  takeProblems(): PageProblem[];
  /** Throws if the page reported a console error or an uncaught exception not yet taken. */
  assertClean(opts?: EvaluateOptions): void;
  /** Closes the browser; removes the profile unless `keepProfile` (then the caller removes it). */
  close(opts?: { keepProfile?: boolean }): Promise<void>;
}

export interface LaunchOptions {
  /** Ms for playwright actions (navigation, waits). Default 15 s. */
  timeoutMs?: number;
  /** Extra Chromium arguments. */
  args?: string[];
  /**
   * An existing profile directory to reuse (e.g. one a closed session kept,
   * to test what survives a browser restart). Default: a fresh temp dir.
   */
  profileDir?: string;
}

/** True when Debian's Chromium is installed (scripts/ensure-chromium.sh). */
export function haveChromium(): boolean {
  return existsSync(CHROMIUM_PATH);
}

function describe(p: PageProblem): string {
  return `${p.kind}${p.url ? ` (${p.url})` : ''}: ${p.text}`;
}

/** Launches Chromium with a persistent profile (fresh unless `opts.profileDir`) and one page on `server`. */
export async function launchChromium(server: TestServer, opts: LaunchOptions = {}): Promise<ChromiumSession> {
  if (!haveChromium()) throw new Error(`${CHROMIUM_PATH} is missing: run scripts/ensure-chromium.sh`);
  const ownDir = opts.profileDir === undefined;
  const profileDir = opts.profileDir ?? mkdtempSync(join(tmpdir(), 'layerbox-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
      timeout: 30_000,
    });
  } catch (e) {
    if (ownDir) rmSync(profileDir, { recursive: true, force: true });
    throw e;
  }
  const timeout = opts.timeoutMs ?? 15_000;
  context.setDefaultTimeout(timeout);
  context.setDefaultNavigationTimeout(timeout);

  let problems: PageProblem[] = [];
  const watch = (p: Page): void => {
    p.on('console', (m: ConsoleMessage) => {
      if (m.type() !== 'error') return;
      const loc = m.location();
      problems.push({ kind: 'console', text: m.text(), url: loc.url ? `${loc.url}:${loc.lineNumber + 1}` : p.url() });
    });
    p.on('pageerror', (e: Error) => problems.push({ kind: 'pageerror', text: e.stack || String(e), url: p.url() }));
    p.on('crash', () => problems.push({ kind: 'crash', text: 'the page crashed', url: p.url() }));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  const page = context.pages()[0] ?? (await context.newPage());

  const take = (): PageProblem[] => {
    const out = problems;
    problems = [];
    return out;
  };
  const assertClean = (o: EvaluateOptions = {}): void => {
    const left = take().filter((p) => !(o.allow ?? []).some((re) => re.test(p.text)));
    if (left.length) throw new Error(`the page reported ${left.length} problem(s):\n${left.map(describe).join('\n')}`);
  };
  const waitReady = async (): Promise<void> => {
    try {
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout });
    } catch (e) {
      // The cause is usually a page error: report those first.
      assertClean();
      throw e;
    }
  };

  let closed = false;
  const session: ChromiumSession = {
    context,
    page,
    profileDir,
    async goto(path, o = {}) {
      await page.goto(server.url(path), { waitUntil: 'load' });
      if (o.waitReady) await waitReady();
      assertClean(o);
    },
    async openHarness() {
      await session.goto(HARNESS_PAGE, { waitReady: true });
    },
    async reload(o = {}) {
      await page.reload({ waitUntil: 'load' });
      if (o.waitReady) await waitReady();
      assertClean(o);
    },
    async evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg?: A, o: EvaluateOptions = {}): Promise<R> {
      let result: R;
      try {
        result = (await page.evaluate(fn as unknown as (arg: unknown) => Promise<R>, arg)) as R;
      } catch (e) {
        // A rejected evaluation: put what the page logged next to it.
        const seen = take();
        if (seen.length) (e as Error).message += `\npage problems:\n${seen.map(describe).join('\n')}`;
        throw e;
      }
      assertClean(o);
      return result;
    },
    takeProblems: take,
    assertClean,
    async close(o = {}) {
      if (closed) return;
      closed = true;
      try {
        await context.close();
      } finally {
        if (!o.keepProfile) rmSync(profileDir, { recursive: true, force: true });
      }
    },
  };
  return session;
}

/** Builds dist/ when its browser bundles are missing. */
export function ensureBrowserBundles(): void {
  if (!existsSync(join(REPO_ROOT, 'dist/browser.js')) || !existsSync(join(REPO_ROOT, 'dist/browser-worker.js'))) {
    const r = spawnSync(process.execPath, ['esbuild.config.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building dist failed:\n${r.stderr}${r.stdout}`);
  }
}

/**
 * The setup every Chromium test file shares: builds dist/ when its browser
 * bundles are missing, serves the repo root, launches Chromium on the
 * harness page, checks each test left no page errors, and cleans up.
 * Returns getters, valid inside tests.
 */
export function useChromiumHarness(): { server: () => TestServer; browser: () => ChromiumSession; restart: () => Promise<void> } {
  let server: TestServer | undefined;
  let browser: ChromiumSession | undefined;
  beforeAll(async () => {
    ensureBrowserBundles();
    server = await startServer();
    browser = await launchChromium(server);
    await browser.openHarness();
  });
  afterEach(() => browser?.assertClean());
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  /** A new browser on the same profile (what survives a browser restart). */
  const restart = async () => {
    const dir = browser!.profileDir;
    await browser!.close({ keepProfile: true });
    browser = await launchChromium(server!, { profileDir: dir });
    await browser.openHarness();
  };
  return { server: () => server!, browser: () => browser!, restart };
}
