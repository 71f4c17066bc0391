// `layerbox playground`: the static server (isolation headers, types, ranges,
// confinement), the playground server over the built dist/ (redirects, the
// ready images and their images.json), a bundle from it run in a box, and the
// built CLI command itself.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerboxError, importBundle, openStore } from '../runtime/node/index.js';
import { type PlaygroundServer, startPlaygroundServer } from '../runtime/node/playground-server.js';
import { type StaticServer, startStaticServer } from '../runtime/node/static-server.js';
import type { CatalogEntry } from '../examples/playground/catalog.js';

const exec = promisify(execFile);
const DIST = resolve('dist');
const IMAGES = join(DIST, 'playground/images');
const dec = new TextDecoder();

const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

let tmp: string;
let site: StaticServer;
let playground: PlaygroundServer;

beforeAll(async () => {
  // The images come from the built library; build it when missing, then bring the images up to date (a no-op when they are).
  if (!existsSync(join(DIST, 'node.js'))) await exec(process.execPath, ['esbuild.config.mjs']);
  await exec(process.execPath, ['scripts/build-playground.mjs'], { maxBuffer: 16 << 20 });

  tmp = await mkdtemp(join(tmpdir(), 'layerbox-playground-'));
  const root = join(tmp, 'site');
  await mkdir(join(root, 'dir'), { recursive: true });
  for (const f of ['a.js', 'a.wasm', 'a.html', 'a.css', 'a.json', 'a.lbx', 'a.js.map', 'a.unknown']) await writeFile(join(root, f), `contents of ${f}\n`);
  await writeFile(join(root, 'dir/index.html'), '<p>index</p>\n');
  await writeFile(join(tmp, 'secret.txt'), 'TOP SECRET\n');
  await symlink(join(tmp, 'secret.txt'), join(root, 'escape.txt'));
  site = await startStaticServer({ root, port: 0, index: true });
  playground = await startPlaygroundServer({ dist: DIST, port: 0 });
});

afterAll(async () => {
  await site?.close();
  await playground?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const get = (server: { origin: string }, path: string, headers: Record<string, string> = {}) => fetch(server.origin + path, { headers, redirect: 'manual' });

describe('the static server', () => {
  it('sends the isolation headers and a content type for each kind of file', async () => {
    const types: Record<string, RegExp> = {
      '/a.js': /^text\/javascript/,
      '/a.wasm': /^application\/wasm$/,
      '/a.html': /^text\/html/,
      '/a.css': /^text\/css/,
      '/a.json': /^application\/json/,
      '/a.lbx': /^application\/octet-stream$/,
      '/a.js.map': /^application\/json/,
      '/a.unknown': /^application\/octet-stream$/,
    };
    for (const [path, type] of Object.entries(types)) {
      const r = await get(site, path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type'), path).toMatch(type);
      for (const [h, v] of Object.entries(ISOLATION)) expect(r.headers.get(h), `${path} ${h}`).toBe(v);
      expect(await r.text()).toBe(`contents of ${path.slice(1)}\n`);
    }
  });

  it('answers ranges, HEAD, missing files and other methods', async () => {
    const part = await get(site, '/a.lbx', { Range: 'bytes=3-7' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 3-7/18');
    expect(await part.text()).toBe('tents');
    expect((await get(site, '/a.lbx', { Range: 'bytes=100-' })).status).toBe(416);
    const head = await fetch(site.origin + '/a.js', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('17');
    expect((await get(site, '/nope.js')).status).toBe(404);
    const post = await fetch(site.origin + '/a.js', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(post.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
  });

  it('serves index.html for a directory and redirects the name without its slash', async () => {
    const dir = await get(site, '/dir/');
    expect(dir.status).toBe(200);
    expect(dir.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await dir.text()).toBe('<p>index</p>\n');
    const bare = await get(site, '/dir?x=1');
    expect(bare.status).toBe(302);
    expect(bare.headers.get('location')).toBe('/dir/?x=1');
  });

  it('never leaves its root: dot-dot, encoded dot-dot, symbolic links', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/dir/..%2f..%2fsecret.txt', '/escape.txt']) {
      const r = await get(site, path);
      expect(r.status, path).not.toBe(200);
      expect(await r.text(), path).not.toContain('TOP SECRET');
    }
    expect((await get(site, '/a%00.js')).status).toBe(400);
  });

  it('says clearly when the port is taken', async () => {
    const err = await startStaticServer({ root: tmp, port: site.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerboxError);
    expect((err as Error).message).toMatch(new RegExp(`port ${site.port} .*already in use`));
  });
});

describe('the playground server over dist/', () => {
  it('redirects / to /playground/ and serves the library cross-origin isolated', async () => {
    const root = await get(playground, '/');
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/playground/');
    expect(playground.url).toBe(`${playground.origin}/playground/`);
    expect(playground.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await get(playground, '/playground')).headers.get('location')).toBe('/playground/');

    for (const [path, type] of [['/browser.js', /^text\/javascript/], ['/browser-worker.js', /^text\/javascript/], ['/browser.js.map', /^application\/json/], ['/embed/toolbox.wasm', /^application\/wasm$/], ['/embed/index.html', /^text\/html/]] as const) {
      const r = await get(playground, path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type'), path).toMatch(type);
      for (const [h, v] of Object.entries(ISOLATION)) expect(r.headers.get(h), `${path} ${h}`).toBe(v);
      await r.arrayBuffer();
    }
    // The served copy of the embed example points at dist/'s own files.
    const embed = await (await get(playground, '/embed/index.html')).text();
    expect(embed).toContain(`from '../browser.js'`);
    expect(embed).toContain(`'./toolbox.wasm'`);
  });

  it('lists the three images in images.json, each with its bundle', async () => {
    const r = await get(playground, '/playground/images/images.json');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    const list = (await r.json()) as CatalogEntry[];
    expect(list.map((i) => i.name)).toEqual(['sqlite', 'ruby', 'toolbox']);
    expect(list.map((i) => i.tag)).toEqual(['sqlite:latest', 'ruby:latest', 'toolbox:latest']);
    expect(list.map((i) => i.language)).toEqual(['sql', 'ruby', 'shell']);
    for (const i of list) {
      expect(Object.keys(i)).toEqual(['name', 'tag', 'file', 'bytes', 'title', 'description', 'language', 'sample', 'run']);
      expect(i.bytes).toBe(statSync(join(IMAGES, i.file)).size);
      const head = await fetch(`${playground.origin}/playground/images/${i.file}`, { method: 'HEAD' });
      expect(head.status, i.file).toBe(200);
      expect(head.headers.get('content-type')).toBe('application/octet-stream');
      expect(Number(head.headers.get('content-length'))).toBe(i.bytes);
    }
    const [sqlite, ruby, toolbox] = list as [CatalogEntry, CatalogEntry, CatalogEntry];
    expect(sqlite.sample).toBe('/work/example.sql');
    expect(sqlite.run).toEqual({ kind: 'command', program: '/usr/bin/sqlite3.wasm', args: ['sqlite3', '/data/app.db'], stdin: 'editor' });
    expect(ruby.sample).toBe('/work/hello.rb');
    expect(ruby.run).toEqual({ kind: 'ruby', program: '/usr/bin/ruby.wasm', loadPath: '/usr/local/lib/ruby' });
    expect(toolbox.sample).toBeNull();
    expect(toolbox.run).toEqual({ kind: 'command', program: '/bin/toolbox.wasm', args: 'prompt' });
  });

  it('answers a range request on a bundle with 206 and those bytes', async () => {
    const r = await get(playground, '/playground/images/ruby.lbx', { Range: 'bytes=512-1023' });
    expect(r.status).toBe(206);
    const size = statSync(join(IMAGES, 'ruby.lbx')).size;
    expect(r.headers.get('content-range')).toBe(`bytes 512-1023/${size}`);
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    const body = new Uint8Array(await r.arrayBuffer());
    expect(Buffer.from(body).equals(readFileSync(join(IMAGES, 'ruby.lbx')).subarray(512, 1024))).toBe(true);
  });

  it('serves bundles that import into a store, and the SQLite image runs its shell', async () => {
    const bytes = new Uint8Array(await (await get(playground, '/playground/images/sqlite.lbx')).arrayBuffer());
    const store = await openStore('memory:');
    const index = await importBundle(store, bytes);
    expect(index.images.map((i) => i.tags)).toEqual([['sqlite:latest']]);
    const box = await store.createBox('db', { image: 'sqlite:latest' });
    expect(box.config.env).toContain('HOME=/work');
    expect(box.fs.readdir('/data')).toEqual([]);
    expect(box.fs.stat('/tmp').type).toBe('dir');
    expect(dec.decode(box.fs.readFile('/work/example.sql'))).toMatch(/CREATE TABLE/);
    const r = await box.run(box.fs.readFile('/usr/bin/sqlite3.wasm'), { args: ['sqlite3', '/data/app.db'], stdin: 'SELECT 1+1;' });
    expect(dec.decode(r.stderr)).toBe('');
    expect(r.exitCode).toBe(0);
    expect(dec.decode(r.stdout)).toBe('2\n');
    // The sample itself runs too (twice: it is meant to be re-run in the same box).
    for (const n of [1, 2]) {
      const s = await box.run(box.fs.readFile('/usr/bin/sqlite3.wasm'), { args: ['sqlite3', '/data/app.db'], stdin: box.fs.readFile('/work/example.sql') });
      expect(dec.decode(s.stderr)).toBe('');
      expect(dec.decode(s.stdout)).toMatch(new RegExp(`ada\\s+${n}\\n`));
    }
  });

  it('imports the other two bundles with their programs and samples', async () => {
    const store = await openStore('memory:');
    for (const name of ['ruby', 'toolbox']) await importBundle(store, new Uint8Array(readFileSync(join(IMAGES, `${name}.lbx`))));
    const rb = await store.createBox('rb', { image: 'ruby:latest' });
    expect(rb.fs.stat('/usr/bin/ruby.wasm').size).toBeGreaterThan(1 << 20);
    expect(rb.fs.stat('/usr/local/lib/ruby/3.4.0/json.rb').type).toBe('file');
    expect(dec.decode(rb.fs.readFile('/work/hello.rb'))).toMatch(/require 'json'[\s\S]*\/work\/out\.json/);
    const tb = await store.createBox('tb', { image: 'toolbox:latest' });
    const r = await tb.run(tb.fs.readFile('/bin/toolbox.wasm'), { args: ['toolbox', 'ls', '/home'] });
    expect(r.exitCode).toBe(0);
    expect(dec.decode(r.stdout)).toMatch(/README\.txt/);
  });

  it('refuses to start without dist/playground, saying how to build it', async () => {
    const err = await startPlaygroundServer({ dist: tmp, port: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerboxError);
    expect((err as Error).message).toMatch(/npm run build/);
  });
});

describe('layerbox playground (the built CLI)', () => {
  const CLI = resolve('dist/cli.js');

  /** Starts the CLI; resolves with its first stdout line (or everything it said if it exits first). */
  function start(args: string[]): { child: ChildProcess; line: Promise<string>; exit: Promise<{ code: number | null; stderr: string }> } {
    const child = spawn(process.execPath, [CLI, 'playground', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stderr!.on('data', (b) => (stderr += b));
    const exit = new Promise<{ code: number | null; stderr: string }>((ok) => child.on('exit', (code) => ok({ code, stderr })));
    const line = new Promise<string>((ok) => {
      child.stdout!.on('data', (b) => {
        out += b;
        if (out.includes('\n')) ok(out.slice(0, out.indexOf('\n')));
      });
      void exit.then((e) => ok(out + e.stderr));
    });
    return { child, line, exit };
  }

  it('prints one line with the URL, serves it, and stops cleanly on SIGTERM', async () => {
    const { child, line, exit } = start(['--port', '0']);
    const first = await line;
    expect(first).toMatch(/^Playground: http:\/\/127\.0\.0\.1:\d+\/playground\/$/);
    const url = first.slice('Playground: '.length);
    const r = await fetch(new URL('/playground/images/images.json', url));
    expect(r.status).toBe(200);
    expect(r.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    child.kill('SIGTERM');
    expect((await exit).code).toBe(0);
  });

  it('fails with one clear line when the port is taken, and on a bad --port', async () => {
    const blocker = createServer();
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', () => ok()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const taken = start(['--port', String(port)]);
      const e = await taken.exit;
      expect(e.code).toBe(1);
      expect(e.stderr).toMatch(new RegExp(`^layerbox: port ${port} on 127\\.0\\.0\\.1 is already in use`));
      expect(e.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      blocker.close();
    }
    const bad = await start(['--port', 'http']).exit;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--port takes a port number/);
  });
});
