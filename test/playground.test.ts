// The browser playground (examples/playground, built into dist/playground)
// in real Chromium, driven like a person would: pick the SQLite image, run a
// query, see the database marked A, commit, reload, start a new box from the
// committed image and query it; then Ruby writes a file with json; then the
// toolbox shares a box as a .lbx file and opens it again. Screenshots of each
// step go to test/.cache/screenshots; at 1280×800 and 390×844 the main
// panes must not overlap nor stick out of the window.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ChromiumSession, launchChromium } from './browser/chromium.js';
import { REPO_ROOT, type TestServer, startServer } from './browser/server.js';

const DIST = join(REPO_ROOT, 'dist');
const SOURCE = join(REPO_ROOT, 'examples/playground');
const IMAGES = join(DIST, 'playground/images/images.json');
const PAGE = '/playground/index.html';
const SHOTS = join(REPO_ROOT, 'test/.cache/screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** Ruby's image is 30 MB to download, hash and store; its first run loads it all. */
const SLOW = 60_000;

let server: TestServer;
let browser: ChromiumSession;
let page: Page;
let tmp: string;
const timings: Array<[string, number]> = [];

function newest(dir: string): number {
  return Math.max(...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs));
}

function node(args: string[]): void {
  const r = spawnSync(process.execPath, args, { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
}

beforeAll(async () => {
  const app = join(DIST, 'playground/app.js');
  if (!existsSync(app) || !existsSync(join(DIST, 'browser-worker.js')) || statSync(app).mtimeMs < newest(SOURCE)) node(['esbuild.config.mjs']);
  if (!existsSync(app)) throw new Error('dist/playground/app.js is missing: esbuild.config.mjs does not build the playground');
  if (!existsSync(IMAGES)) node(['scripts/build-playground.mjs']);
  mkdirSync(SHOTS, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), 'layerbox-playground-'));
  server = await startServer(DIST);
  browser = await launchChromium(server, { timeoutMs: SLOW });
  page = browser.page;
  await page.setViewportSize(DESKTOP);
});

afterEach(() => browser?.assertClean());

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  if (timings.length) console.log(`playground steps:\n${timings.map(([s, ms]) => `  ${s}: ${(ms / 1000).toFixed(2)} s`).join('\n')}`);
});

/** Times a step of a flow (reported after the run). */
async function step<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings.push([name, performance.now() - t0]);
  }
}

const testid = (id: string) => page.locator(`[data-testid="${id}"]`);
const treeRow = (path: string) => page.locator(`[data-testid="tree-row"][data-path="${path}"]`);

async function shot(name: string): Promise<void> {
  const size = page.viewportSize()!;
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: size.width < 600 });
}

/** Replaces the text of the editor's tab on screen, as typed. */
async function setEditor(text: string): Promise<void> {
  await page.locator('[data-testid="editor"] .cm-content').click();
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

async function runs(): Promise<number> {
  return Number((await testid('run-status').getAttribute('data-runs')) ?? 0);
}

/** Presses Run (or submits the command line) and waits for the run to end; returns the status text. */
async function run(how: 'button' | 'command' = 'button', timeout = SLOW): Promise<string> {
  const before = await runs();
  if (how === 'button') await testid('run').click();
  else await testid('command-input').press('Enter');
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid="run-status"]')?.getAttribute('data-runs') ?? 0) > n, before, { timeout });
  return (await testid('run-status').textContent()) ?? '';
}

/** The terminal's text after the last command line the playground echoed. */
async function lastOutput(): Promise<string> {
  const text = await page.evaluate(() => (window as unknown as { playground: { terminalText(): string } }).playground.terminalText());
  const i = text.lastIndexOf('\n$ ');
  return i < 0 ? text : text.slice(i + 1);
}

async function boxName(): Promise<string> {
  return page.locator('[data-testid="box-select"]').inputValue();
}

async function waitBox(name: string, timeout = SLOW): Promise<void> {
  await page.waitForFunction((n) => (document.querySelector('[data-testid="box-select"]') as HTMLSelectElement | null)?.value === n && !(document.querySelector('[data-testid="run"]') as HTMLButtonElement).disabled, name, { timeout });
}

/** The banner must not show an error. */
async function expectNoError(): Promise<void> {
  const banner = testid('banner');
  if (await banner.isVisible()) expect({ tone: await banner.getAttribute('data-tone'), text: await banner.textContent() }).not.toMatchObject({ tone: 'error' });
}

/**
 * The main panes (header, files, history, editor, terminal) are visible,
 * inside the window's width, and no two of them overlap; nothing in the page
 * scrolls sideways and no control sticks out on the right.
 */
async function expectCleanLayout(label: string): Promise<void> {
  const r = await page.evaluate(() => {
    const ids = ['header', 'files-panel', 'history-panel', 'editor-pane', 'terminal-pane'];
    const rects = ids.map((id) => {
      const b = document.querySelector(`[data-testid="${id}"]`)!.getBoundingClientRect();
      return { id, left: b.left + scrollX, top: b.top + scrollY, right: b.right + scrollX, bottom: b.bottom + scrollY, width: b.width, height: b.height };
    });
    const overlaps: string[] = [];
    for (let i = 0; i < rects.length; i++)
      for (let j = i + 1; j < rects.length; j++) {
        const a = rects[i]!;
        const b = rects[j]!;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) overlaps.push(`${a.id} × ${b.id}: ${Math.round(w)}×${Math.round(h)}`);
      }
    const width = document.documentElement.clientWidth;
    const outside = rects.filter((x) => x.left < 0 || x.right > width + 0.5 || x.width < 50 || x.height < 40).map((x) => `${x.id} ${JSON.stringify(x)}`);
    const controls = Array.from(document.querySelectorAll<HTMLElement>('button, select, input:not([type=file]), summary'))
      .filter((e) => e.offsetParent !== null && !e.closest('dialog, .menu-items, .cm-editor, .xterm'))
      .filter((e) => {
        const b = e.getBoundingClientRect();
        return b.right > width + 0.5 || b.left < -0.5;
      })
      .map((e) => `${e.tagName.toLowerCase()} ${e.dataset.testid ?? e.textContent?.trim()}`);
    return { overlaps, outside, controls, scrollWidth: document.documentElement.scrollWidth, width };
  });
  expect({ label, ...r }).toEqual({ label, overlaps: [], outside: [], controls: [], scrollWidth: r.width, width: r.width });
}

/** Both screen sizes: a full-page screenshot at 390×844 and the layout checks; back to 1280×800. */
async function checkPhone(name: string): Promise<void> {
  await expectCleanLayout(`${name} at 1280×800`);
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(150);
  await expectCleanLayout(`${name} at 390×844`);
  await shot(name);
  await page.setViewportSize(DESKTOP);
  await page.waitForTimeout(150);
}

describe('playground in Chromium', () => {
  it('SQLite: query, see the database added, commit, reload, query the committed image from a new box', async () => {
    await step('open the page', () => browser.goto(PAGE, { waitReady: true }));
    await testid('welcome').waitFor();
    await shot('sqlite-01-welcome');
    await checkPhone('sqlite-01-welcome-phone');

    await step('pick SQLite (download + import + box)', async () => {
      await testid('image-card-sqlite').click();
      await waitBox('sqlite-1');
    });
    await shot('sqlite-02-box');

    await setEditor("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\nINSERT INTO notes(body) VALUES ('hello'), ('world');\nSELECT id, body FROM notes ORDER BY id;\n");
    const status = await step('run the query', () => run());
    expect(status).toMatch(/^exit 0/);
    expect(await lastOutput()).toContain('1|hello\n2|world');
    const db = treeRow('/data/app.db');
    await db.waitFor();
    expect(await db.getAttribute('data-change')).toBe('A');
    expect(await db.locator('[data-testid="tree-mark"]').textContent()).toBe('A');
    await expectNoError();
    await shot('sqlite-03-query');

    await testid('commit').click();
    await testid('dialog-message').fill('Create the notes table');
    const tag = await testid('dialog-tag').inputValue();
    expect(tag).toBe('sqlite:v1');
    await shot('sqlite-04-commit-dialog');
    await step('commit', async () => {
      await testid('dialog-confirm').click();
      await page.waitForFunction(() => !(document.querySelector('[data-testid="dialog"]') as HTMLDialogElement).open);
    });
    await expect.poll(() => testid('history-row').first().textContent(), { timeout: SLOW }).toContain('Create the notes table');
    expect(await db.count()).toBe(1);
    expect(await db.getAttribute('data-change')).toBeNull();
    await shot('sqlite-05-committed');

    await step('reload', () => browser.reload({ waitReady: true }));
    await waitBox('sqlite-1');
    await expect.poll(() => testid('history-row').first().textContent(), { timeout: SLOW }).toContain('Create the notes table');
    expect(await testid('history-image').textContent()).toContain('sqlite:v1');
    await shot('sqlite-06-reloaded');

    await testid('image-select').selectOption(`image:${tag}`);
    await step('new box from the committed image', async () => {
      await testid('new-box').click();
      await waitBox('sqlite-2');
    });
    expect(await testid('history-image').textContent()).toContain('sqlite:v1');
    await expect.poll(() => testid('history-row').first().textContent(), { timeout: SLOW }).toContain('Create the notes table');
    await setEditor('SELECT body FROM notes ORDER BY id;');
    expect(await step('query the table in the new box', () => run())).toMatch(/^exit 0/);
    expect(await lastOutput()).toContain('hello\nworld');
    await expectNoError();
    await shot('sqlite-07-new-box');
    await checkPhone('sqlite-08-phone');
  });

  it('Ruby: a script that requires json writes a file, the tree shows it; committed, reloaded, a new box reads it', async () => {
    if (!page.url().endsWith(PAGE)) await browser.goto(PAGE, { waitReady: true });
    await testid('image-select').selectOption('catalog:ruby');
    // A slower network, so the download's progress can be seen.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 24 << 20, uploadThroughput: -1 });
    await step('new Ruby box (download at 24 MB/s + import + box)', async () => {
      await testid('new-box').click();
      await page.waitForFunction(() => /Downloading Ruby — [\d.]+ MB of 31 MB/.test(document.querySelector('[data-testid="progress"]:not([hidden])')?.textContent ?? ''));
      expect(await testid('progress-bar').getAttribute('max')).toBe(String(statSync(join(DIST, 'playground/images/ruby.lbx')).size));
      await shot('ruby-00-download-progress');
      await waitBox('ruby-1', SLOW * 2);
    });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();
    expect(await testid('progress').isVisible()).toBe(false);
    await shot('ruby-01-box');

    await setEditor(
      [
        "require 'json'",
        "require 'fileutils'",
        "FileUtils.mkdir_p('/work')",
        "data = { language: 'ruby', version: RUBY_VERSION, squares: (1..4).map { |i| i * i } }",
        "File.write('/work/out.json', JSON.pretty_generate(data))",
        'puts JSON.generate(data)',
        "puts \"wrote #{File.size('/work/out.json')} bytes\"",
      ].join('\n'),
    );
    const status = await step('run Ruby (first run loads the image)', () => run('button', SLOW * 2));
    expect(status).toMatch(/^exit 0/);
    const out = await lastOutput();
    expect(out).toMatch(/\{"language":"ruby","version":"3\.4\.\d+","squares":\[1,4,9,16\]\}/);
    expect(out).toMatch(/wrote \d+ bytes/);
    const file = treeRow('/work/out.json');
    await file.waitFor();
    expect(await file.getAttribute('data-change')).toBe('A');
    await expectNoError();
    await shot('ruby-02-run');

    // The file opens in the editor; an open .rb file is what Run evaluates.
    await file.click();
    await expect.poll(() => testid('tab-file').textContent(), { timeout: SLOW }).toContain('out.json');
    expect(await page.locator('[data-testid="editor"] .cm-content').textContent()).toContain('"language": "ruby"');
    await treeRow('/work/hello.rb').click();
    await expect.poll(() => testid('tab-file').textContent(), { timeout: SLOW }).toContain('hello.rb');
    expect(await step('run /work/hello.rb (warm)', () => run())).toMatch(/^exit 0/);
    expect(await lastOutput()).toMatch(/^\$ ruby \/work\/hello\.rb\nHello from Ruby 3\.4\.\d+!/);
    await expectNoError();
    await shot('ruby-03-file');

    // Commit, reload, and a new box from the committed image reads the file back.
    await testid('commit').click();
    await testid('dialog-message').fill('Ruby wrote out.json');
    expect(await testid('dialog-tag').inputValue()).toBe('ruby:v1');
    await step('commit the Ruby box', async () => {
      await testid('dialog-confirm').click();
      await page.waitForFunction(() => !(document.querySelector('[data-testid="dialog"]') as HTMLDialogElement).open);
    });
    await browser.reload({ waitReady: true });
    await waitBox('ruby-1');
    await expect.poll(() => testid('history-row').first().textContent(), { timeout: SLOW }).toContain('Ruby wrote out.json');
    await testid('image-select').selectOption('image:ruby:v1');
    await testid('new-box').click();
    await waitBox('ruby-2');
    await testid('tab-script').click();
    await setEditor("require 'json'\nputs JSON.parse(File.read('/work/out.json')).fetch('ruby')");
    expect(await step('run Ruby in a new box from ruby:v1 (after a reload)', () => run())).toMatch(/^exit 0/);
    expect(await lastOutput()).toMatch(/\n3\.4\.\d+\n/);
    expect(await treeRow('/work/out.json').getAttribute('data-change')).toBeNull();
    await expectNoError();
    await shot('ruby-04-new-box');
    await checkPhone('ruby-05-phone');
  });

  it('a program that runs past the timeout is stopped with a clear message, and the box keeps working', async () => {
    await browser.goto(`${PAGE}?timeout=2`, { waitReady: true });
    await testid('box-select').selectOption('sqlite-1');
    await waitBox('sqlite-1');
    await setEditor('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;');
    expect(await step('run into the 2 s timeout', () => run())).toBe('Timed out · exit 124');
    expect(await testid('banner').getAttribute('data-tone')).toBe('warn');
    expect(await testid('banner').textContent()).toContain('stopped (timeout, exit 124)');
    expect(await lastOutput()).toContain('[stopped after 2 s: timeout, exit 124]');
    await shot('errors-01-timeout');
    await setEditor('SELECT count(*) FROM notes;');
    expect(await run()).toMatch(/^exit 0/);
    expect(await lastOutput()).toContain('\n2\n');
    expect(await testid('banner').isVisible()).toBe(false);

    // Ruby runs on the page: a watchdog in the VM stops it.
    await testid('box-select').selectOption('ruby-1');
    await waitBox('ruby-1');
    await testid('tab-script').click();
    await setEditor('n = 0\nloop { n += 1 }');
    expect(await step('run Ruby into the 2 s timeout', () => run())).toBe('Timed out · exit 124');
    expect(await testid('banner').textContent()).toContain('stopped (timeout, exit 124)');
    await shot('errors-02-ruby-timeout');
  });

  it('toolbox: runs a command line; a box with an uploaded file is downloaded as .lbx and opened again', async () => {
    if (!page.url().endsWith(PAGE)) await browser.goto(PAGE, { waitReady: true });
    await testid('image-select').selectOption('catalog:toolbox');
    await testid('new-box').click();
    await waitBox('toolbox-1');
    await testid('command-form').waitFor();

    // The image's README opens in the editor: edit it and save it into the box (Ctrl-S).
    await expect.poll(() => testid('tab-file').textContent(), { timeout: SLOW }).toContain('README.txt');
    await page.locator('[data-testid="editor"] .cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.insertText('\nEdited in the playground.\n');
    await page.keyboard.press('Control+s');
    await page.waitForFunction(() => document.querySelector('[data-testid="tree-row"][data-path="/home/README.txt"]')?.getAttribute('data-change') === 'C');

    const upload = join(tmp, 'hello.txt');
    writeFileSync(upload, 'uploaded from the test\n');
    await treeRow('/home').click();
    await testid('upload-input').setInputFiles(upload);
    await treeRow('/home/hello.txt').waitFor();
    expect(await treeRow('/home/hello.txt').getAttribute('data-change')).toBe('A');

    await testid('command-input').fill('cat /home/hello.txt');
    expect(await run('command')).toMatch(/^exit 0/);
    expect(await lastOutput()).toContain('uploaded from the test');
    await testid('command-input').fill('rm /home/poems/fox.txt');
    expect(await run('command')).toMatch(/^exit 0/);
    const gone = treeRow('/home/poems/fox.txt');
    await gone.waitFor();
    expect(await gone.getAttribute('data-change')).toBe('D');
    expect(await gone.locator('s').textContent()).toBe('fox.txt');
    await shot('toolbox-01-command');

    await treeRow('/home/hello.txt').click();
    const [file] = await Promise.all([page.waitForEvent('download'), testid('download-file').click()]);
    expect(file.suggestedFilename()).toBe('hello.txt');

    await testid('share-menu').locator('summary').click();
    const [saved] = await Promise.all([page.waitForEvent('download'), testid('export-box').click()]);
    expect(saved.suggestedFilename()).toBe('toolbox-1.lbx');
    const lbx = join(tmp, 'toolbox-1.lbx');
    await saved.saveAs(lbx);
    expect(statSync(lbx).size).toBeGreaterThan(1000);

    await testid('import-input').setInputFiles(lbx);
    await waitBox('toolbox-2');
    await expect.poll(() => testid('banner').textContent(), { timeout: SLOW }).toContain('toolbox-1 was taken: opened as toolbox-2');
    await treeRow('/home/hello.txt').waitFor();
    expect(await treeRow('/home/hello.txt').getAttribute('data-change')).toBe('A');
    expect(await boxName()).toBe('toolbox-2');
    await shot('toolbox-02-imported');

    // Fork the imported box, then reset the fork: the original keeps its changes.
    await testid('fork').click();
    expect(await testid('dialog-name').inputValue()).toBe('toolbox-3');
    await testid('dialog-confirm').click();
    await waitBox('toolbox-3');
    await treeRow('/home/hello.txt').waitFor();
    await testid('reset').click();
    await testid('dialog-confirm').click();
    await page.waitForFunction(() => !document.querySelector('[data-testid="tree-row"][data-path="/home/hello.txt"]'));
    expect(await page.locator('[data-testid="tree-row"][data-change]').count()).toBe(0);
    await testid('box-select').selectOption('toolbox-2');
    await waitBox('toolbox-2');
    expect(await treeRow('/home/hello.txt').getAttribute('data-change')).toBe('A');
  });
});
