// Real WASI programs over boxes: the SQLite shell (a command, run with
// box.run) and CRuby 3.4 (a reactor, driven through box.wasi and RubyVM)
// with its standard library as an image layer.
//
// Fixtures: test/fixtures/sqlite3.wasm is committed (scripts/build-sqlite.sh
// rebuilds it; here it is built only when missing); the Ruby stdlib is
// extracted once into test/.cache/ruby-stdlib by scripts/ruby-stdlib.mjs.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { RubyVM } from '@ruby/wasm-wasi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as layerbox from '../runtime/node/index.js';
import { type LayerBuilder, type NodeStore, openStore } from '../runtime/node/index.js';
import { defaultOut as RUBY_STDLIB, extractRubyStdlib } from '../scripts/ruby-stdlib.mjs';

const exec = promisify(execFile);
const SQLITE = resolve('test/fixtures/sqlite3.wasm');
const RUBY = resolve('node_modules/@ruby/3.4-wasm-wasi/dist/ruby.wasm');
const dec = new TextDecoder();

let tmp: string;
let store: NodeStore;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-programs-'));
  // box.run over a directory store runs the guest in dist/worker.js.
  const builds: Promise<unknown>[] = [];
  if (!existsSync('dist/worker.js')) builds.push(exec('node', ['esbuild.config.mjs']));
  if (!existsSync(SQLITE)) builds.push(exec('bash', ['scripts/build-sqlite.sh'], { maxBuffer: 16 << 20 }));
  // The extraction runs ruby+stdlib.wasm over this checkout's layerbox (not dist/).
  builds.push(extractRubyStdlib(RUBY_STDLIB, { lib: layerbox }));
  await Promise.all(builds);
  store = await openStore(join(tmp, 'store'));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('SQLite shell', () => {
  it('creates a database in a box, commits it, and later boxes see exactly the committed state', async () => {
    const tree = join(tmp, 'tree');
    for (const d of ['data', 'tmp', 'etc']) await mkdir(join(tree, d), { recursive: true });
    await store.importDirectory(tree, { tag: 'base' });
    const wasm = new Uint8Array(await readFile(SQLITE));

    const db = await store.createBox('db', { image: 'base' });
    const r = await db.run(wasm, {
      args: ['sqlite3', '/data/app.db'],
      stdin: "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); CREATE INDEX ti ON t(name); INSERT INTO t(name) VALUES ('a'),('b'),('c'); SELECT name FROM t ORDER BY name DESC;",
    });
    expect(dec.decode(r.stderr)).not.toMatch(/error/i);
    expect(r.exitCode).toBe(0);
    // stdin is not a terminal, so the shell prints bare rows (no banner, prompts or boxes).
    expect(dec.decode(r.stdout)).toBe('c\nb\na\n');
    const changes = db.diff();
    expect(changes).toContainEqual({ kind: 'A', path: '/data/app.db' });
    expect(changes.filter((c) => /-journal$|^\/tmp\//.test(c.path))).toEqual([]);
    const header = (await store.openBox('db')).fs.readFile('/data/app.db').subarray(0, 16);
    expect(dec.decode(header)).toBe('SQLite format 3\0');

    await db.commit({ tag: 'base:db' });
    expect(db.diff()).toEqual([]);

    const reader = await store.createBox('reader', { image: 'base:db' });
    const count = await reader.run(wasm, { args: ['sqlite3', '/data/app.db'], stdin: 'SELECT COUNT(*) FROM t;' });
    expect(count.exitCode).toBe(0);
    expect(dec.decode(count.stdout)).toBe('3\n');

    const fresh = await store.createBox('fresh', { image: 'base' });
    expect(fresh.fs.readdir('/data')).toEqual([]);
    const none = await fresh.run(wasm, { args: ['sqlite3', '/data/app.db'], stdin: 'SELECT COUNT(*) FROM t;' });
    expect(dec.decode(none.stderr)).toMatch(/no such table: t/);
  });
});

/** Adds a host directory's tree to a layer under `prefix`. */
async function addTree(b: LayerBuilder, host: string, prefix: string): Promise<number> {
  let n = 0;
  for (const name of (await readdir(host)).sort()) {
    const h = join(host, name);
    const p = `${prefix}/${name}`;
    const s = await lstat(h);
    if (s.isDirectory()) {
      b.addDir(p, { mode: s.mode });
      n += await addTree(b, h, p);
    } else if (s.isSymbolicLink()) b.addSymlink(p, await readlink(h));
    else await b.addFile(p, new Uint8Array(await readFile(h)), { mode: s.mode });
    n++;
  }
  return n;
}

describe('Ruby', () => {
  it('runs bare ruby.wasm with the stdlib from an image layer and writes into the box', async () => {
    let files = 0;
    await store.importLayer(async (b) => {
      files = await addTree(b, RUBY_STDLIB, 'usr/local/lib/ruby');
    }, { tag: 'ruby' });
    expect(files).toBeGreaterThan(1000);
    const box = await store.createBox('rb', { image: 'ruby' });
    expect(box.fs.stat('/usr/local/lib/ruby/3.4.0/json.rb').type).toBe('file');

    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    const args = ['ruby', '-EUTF-8', '-e_=0'];
    const wasi = box.wasi({
      args,
      // ruby.wasm embeds a small /usr of its own (rbconfig.rb) as a wasi-vfs
      // preopen, which shadows /usr under the box's `/`. A second preopen of
      // the same box, rooted at /usr/local/lib/ruby, is the longer prefix, so
      // the guest reaches the image's stdlib there (and its default
      // $LOAD_PATH, which already lists /usr/local/lib/ruby/3.4.0, needs no change).
      mounts: [{ guest: '/usr/local/lib/ruby', fs: box.fs, path: '/usr/local/lib/ruby' }],
      stdout: (b) => out.push(b.slice()),
      stderr: (b) => err.push(b.slice()),
    });
    const module = await WebAssembly.compile(await readFile(RUBY));
    const { vm } = await RubyVM.instantiateModule({ module, wasip1: wasi, args });
    vm.eval(`
      $stdout.sync = true
      require 'json'
      require 'set'
      require 'fileutils'
      puts JSON.generate({a: Set[1,2].size})
      FileUtils.mkdir_p('/work')
      File.write('/work/out.json', JSON.generate({a: Set[1,2].size}))
    `);
    await box.flush();

    expect(dec.decode(Buffer.concat(err))).toBe('');
    expect(dec.decode(Buffer.concat(out))).toBe('{"a":2}\n');
    expect(box.diff()).toEqual([
      { kind: 'A', path: '/work' },
      { kind: 'A', path: '/work/out.json' },
    ]);
    const again = await store.openBox('rb');
    expect(dec.decode(again.fs.readFile('/work/out.json'))).toBe('{"a":2}');
  });
});
