#!/usr/bin/env node
// Builds what `layerbox playground` serves besides the page itself:
//
//   dist/playground/images/sqlite.lbx    image sqlite:latest  (the SQLite shell, /data, /tmp, /work/example.sql)
//   dist/playground/images/ruby.lbx      image ruby:latest    (bare ruby.wasm, its stdlib, /work/hello.rb)
//   dist/playground/images/toolbox.lbx   image toolbox:latest (examples/toolbox/toolbox.wasm, a /home of text files)
//   dist/playground/images/images.json   what the page lists and how it runs each image
//   dist/embed/                          examples/embed/index.html with toolbox.wasm next to it
//
//   node scripts/build-playground.mjs [--force]
//
const BUILT_AT = BigInt(Date.UTC(2026, 10, 1)) * 1_000_000n;

// Each image is built in a memory store with a fixed clock and every mtime
// 0, then written with exportBundle: the same inputs give byte-identical
// bundles. A bundle is rebuilt only when one of its inputs (its programs, the
// Ruby stdlib, this script, the sources that define the bundle format) is
// newer than it. Uses the built library, dist/node.js (run esbuild first;
// `npm run build` does). Missing inputs are made with the existing scripts:
// scripts/build-sqlite.sh, scripts/ruby-stdlib.mjs, scripts/build-toolbox.sh.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { newest } from './lib/newest.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const r = (p) => join(root, p);
const force = process.argv.includes('--force');
const OUT = r('dist/playground/images');
const EMBED_OUT = r('dist/embed');

const SQLITE = r('test/fixtures/sqlite3.wasm');
const RUBY = r('node_modules/@ruby/3.4-wasm-wasi/dist/ruby.wasm');
const RUBY_STDLIB = r('test/.cache/ruby-stdlib');
const TOOLBOX = r('examples/toolbox/toolbox.wasm');
/** What decides a bundle's bytes besides its content: the layer, image, tar and bundle encoders. */
const FORMAT_SOURCES = ['src/bundle.ts', 'src/layer.ts', 'src/image.ts', 'src/tar.ts', 'src/builder.ts', 'src/codec.ts', 'src/digest.ts'].map(r);

const log = (s) => console.log(`build-playground: ${s}`);
const fail = (s) => {
  console.error(`build-playground: ${s}`);
  process.exit(1);
};
const secs = (t) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
const kib = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

const mtime = (p) => statSync(p).mtimeMs;
const stale = (out, inputs) => force || !existsSync(out) || mtime(out) < Math.max(...inputs.map(newest));

function sh(cmd, args, what) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) fail(`${what} failed (${[cmd, ...args].join(' ')} exited with ${res.status ?? res.signal})`);
}

/** Writes `data` to `file` unless it already holds exactly that (keeps its mtime, so later steps see nothing new). */
function writeIfChanged(file, data) {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  if (existsSync(file) && Buffer.compare(readFileSync(file), bytes) === 0) return false;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
  return true;
}

// ---- the sample files ---------------------------------------------------------

const EXAMPLE_SQL = `-- Runs in /data/app.db, which stays in this box until you reset it.
.headers on
.mode column

CREATE TABLE IF NOT EXISTS visits (
  id    INTEGER PRIMARY KEY,
  who   TEXT NOT NULL,
  at    TEXT NOT NULL DEFAULT (datetime('now'))
);

INSERT INTO visits (who) VALUES ('ada'), ('grace'), ('linus');

SELECT who, COUNT(*) AS visits
  FROM visits
 GROUP BY who
 ORDER BY visits DESC, who;
`;

const HELLO_RB = `# Ruby 3.4 (ruby.wasm) with its standard library from the image's
# /usr/local/lib/ruby. Files you write stay in this box.
require 'json'

langs = {
  'ruby' => RUBY_VERSION,
  'platform' => RUBY_PLATFORM,
  'squares' => (1..5).to_h { |n| [n, n * n] },
}

File.write('/work/out.json', JSON.pretty_generate(langs) + "\\n")
puts "Hello from Ruby #{RUBY_VERSION}!"
puts "Wrote /work/out.json (#{File.size('/work/out.json')} bytes):"
puts File.read('/work/out.json')
`;

const HOME_FILES = {
  '/home/README.txt': `Welcome to the toolbox image.

Everything here lives in image layers; what you change lives in your box,
on top of them. Try:

  ls -l /home
  cat /home/notes/todo.txt
  grep -rn fox /home
  wc -l /home/poems/*.txt
  cp /home/README.txt /home/copy.txt
  find /home -name '*.txt'
`,
  '/home/notes/todo.txt': `- read the layerbox README
- run sqlite3 in a box
- commit a box as a new image
- reset a box and watch the changes vanish
`,
  '/home/notes/shopping.txt': `apples
bread
coffee
oat milk
`,
  '/home/poems/fox.txt': `The quick brown fox
jumps over the lazy dog.
The dog, unbothered,
dreams of a slower fox.
`,
  '/home/poems/haiku.txt': `layers stacked like leaves
one writable page on top
commit, and it stays
`,
  '/home/data/numbers.csv': `n,square,cube
1,1,1
2,4,8
3,9,27
4,16,64
5,25,125
`,
};

// ---- inputs -----------------------------------------------------------------------

function ensureSqlite() {
  if (existsSync(SQLITE)) return;
  log(`${relative(root, SQLITE)} is missing: building it (scripts/build-sqlite.sh)`);
  sh('bash', [r('scripts/build-sqlite.sh')], 'building sqlite3.wasm');
}

async function ensureRubyStdlib(lib) {
  if (!existsSync(RUBY)) fail(`${relative(root, RUBY)} is missing: run npm ci`);
  if (existsSync(RUBY_STDLIB)) return;
  const t = performance.now();
  log(`extracting the Ruby stdlib into ${relative(root, RUBY_STDLIB)} (scripts/ruby-stdlib.mjs)`);
  const { extractRubyStdlib } = await import(pathToFileURL(r('scripts/ruby-stdlib.mjs')).href);
  const res = await extractRubyStdlib(RUBY_STDLIB, { lib });
  log(`  ${res.files} entries in ${secs(t)}`);
}

function ensureToolbox() {
  const script = r('scripts/build-toolbox.sh');
  if (existsSync(TOOLBOX)) return;
  if (!existsSync(script)) fail(`${relative(root, TOOLBOX)} is missing and there is no scripts/build-toolbox.sh to build it`);
  log(`${relative(root, TOOLBOX)} is missing: building it (scripts/build-toolbox.sh)`);
  sh('bash', [script], 'building toolbox.wasm');
  if (!existsSync(TOOLBOX)) fail(`scripts/build-toolbox.sh did not produce ${relative(root, TOOLBOX)}`);
}

// ---- images ---------------------------------------------------------------------

const readBytes = (p) => new Uint8Array(readFileSync(p));
/** LayerBuilder.addFile takes bytes (a string would be read as an iterable of characters). */
const text = (s) => new TextEncoder().encode(s);

/** Adds a host tree under `prefix` with normalised metadata (mtime 0, 0755/0644), in sorted order. */
function addTree(b, host, prefix) {
  const jobs = [];
  const walk = (h, p) => {
    for (const name of readdirSync(h).sort()) {
      const hp = join(h, name);
      const gp = `${p}/${name}`;
      const st = statSync(hp);
      if (st.isDirectory()) {
        b.addDir(gp, { mode: 0o755 });
        walk(hp, gp);
      } else jobs.push([gp, hp, st.mode & 0o111 ? 0o755 : 0o644]);
    }
  };
  walk(host, prefix);
  return (async () => {
    for (const [gp, hp, mode] of jobs) await b.addFile(gp, readBytes(hp), { mode });
    return jobs.length;
  })();
}

const IMAGES = [
  {
    name: 'sqlite',
    tag: 'sqlite:latest',
    title: 'SQLite',
    description: 'The SQLite 3 shell as a WASI command. The editor is its input; the database, /data/app.db, persists in your box.',
    language: 'sql',
    sample: '/work/example.sql',
    run: { kind: 'command', program: '/usr/bin/sqlite3.wasm', args: ['sqlite3', '/data/app.db'], stdin: 'editor' },
    inputs: () => [SQLITE],
    config: { env: ['HOME=/work', 'PATH=/usr/bin', 'TMPDIR=/tmp'], workingDir: '/work', cmd: ['/usr/bin/sqlite3.wasm', '/data/app.db'] },
    fill: async (b) => {
      await b.addFile('/usr/bin/sqlite3.wasm', readBytes(SQLITE), { mode: 0o755 });
      b.addDir('/data', { mode: 0o755 });
      b.addDir('/tmp', { mode: 0o1777 });
      await b.addFile('/work/example.sql', text(EXAMPLE_SQL));
    },
  },
  {
    name: 'ruby',
    tag: 'ruby:latest',
    title: 'Ruby',
    description: 'CRuby 3.4 (ruby.wasm) with its standard library as an image layer. Scripts can require json, set, fileutils… and write files into your box.',
    language: 'ruby',
    sample: '/work/hello.rb',
    run: { kind: 'ruby', program: '/usr/bin/ruby.wasm', loadPath: '/usr/local/lib/ruby' },
    inputs: () => [RUBY, RUBY_STDLIB],
    config: { env: ['HOME=/work', 'PATH=/usr/bin', 'TMPDIR=/tmp'], workingDir: '/work', cmd: ['/usr/bin/ruby.wasm'] },
    fill: async (b) => {
      await b.addFile('/usr/bin/ruby.wasm', readBytes(RUBY), { mode: 0o755 });
      b.addDir('/usr/local/lib/ruby', { mode: 0o755 });
      const n = await addTree(b, RUBY_STDLIB, '/usr/local/lib/ruby');
      if (n < 1000) throw new Error(`the Ruby stdlib in ${RUBY_STDLIB} has only ${n} files; delete it to extract again`);
      b.addDir('/tmp', { mode: 0o1777 });
      await b.addFile('/work/hello.rb', text(HELLO_RB));
    },
  },
  {
    name: 'toolbox',
    tag: 'toolbox:latest',
    title: 'Toolbox',
    description: 'File utilities in one small WASI program (ls, cat, cp, mv, rm, grep, find, wc, head, tail…) over a /home of sample files.',
    language: 'shell',
    sample: null,
    run: { kind: 'command', program: '/bin/toolbox.wasm', args: 'prompt' },
    inputs: () => [TOOLBOX],
    config: { env: ['HOME=/home', 'PATH=/bin'], workingDir: '/home', cmd: ['/bin/toolbox.wasm'] },
    fill: async (b) => {
      await b.addFile('/bin/toolbox.wasm', readBytes(TOOLBOX), { mode: 0o755 });
      b.addDir('/home', { mode: 0o755 });
      b.addDir('/tmp', { mode: 0o1777 });
      for (const [path, body] of Object.entries(HOME_FILES)) await b.addFile(path, text(body));
    },
  },
];

async function buildImage(lib, img) {
  const file = join(OUT, `${img.name}.lbx`);
  const inputs = [fileURLToPath(import.meta.url), ...FORMAT_SOURCES.filter(existsSync), ...img.inputs()];
  if (!stale(file, inputs)) {
    log(`${img.name}.lbx is up to date (${kib(statSync(file).size)})`);
    return file;
  }
  const t = performance.now();
  // A fixed clock, so rebuilds are byte-identical: the images' created time is this release date.
  const store = await lib.openStore('memory:', { clock: () => BUILT_AT });
  await store.importLayer(img.fill, { tag: img.tag, createdBy: `layerbox playground image ${img.name}`, config: img.config });
  const bytes = await lib.exportBundle(store, { images: [img.tag] });
  await store.backend.close();
  const changed = writeIfChanged(file, bytes);
  // Unchanged bytes keep the old file: touch it so it counts as newer than its inputs.
  if (!changed) utimesSync(file, new Date(), new Date());
  log(`${img.name}.lbx ${changed ? 'written' : 'unchanged'}: ${kib(bytes.length)} in ${secs(t)}`);
  return file;
}

function buildEmbed() {
  const page = r('examples/embed/index.html');
  if (!existsSync(page)) return;
  // The example imports ../../dist/browser.js and fetches ../toolbox/toolbox.wasm, which is right
  // when a checkout is served at its root; its copy under dist/embed/ is served with dist/ as the root.
  const html = readFileSync(page, 'utf8');
  const served = html.replace(`'../../dist/browser.js'`, `'../browser.js'`).replace(`'../toolbox/toolbox.wasm'`, `'./toolbox.wasm'`);
  if (!served.includes(`'../browser.js'`) || !served.includes(`'./toolbox.wasm'`)) fail('examples/embed/index.html: expected the imports of ../../dist/browser.js and ../toolbox/toolbox.wasm');
  writeIfChanged(join(EMBED_OUT, 'index.html'), served);
  writeIfChanged(join(EMBED_OUT, 'toolbox.wasm'), readFileSync(TOOLBOX));
}

const t0 = performance.now();
const entry = r('dist/node.js');
if (!existsSync(entry)) fail('dist/node.js is missing: run node esbuild.config.mjs (or npm run build) first');
const lib = await import(pathToFileURL(entry).href);

ensureSqlite();
ensureToolbox();
await ensureRubyStdlib(lib);
mkdirSync(OUT, { recursive: true });

const list = [];
for (const img of IMAGES) {
  const file = await buildImage(lib, img);
  list.push({ name: img.name, tag: img.tag, file: `${img.name}.lbx`, bytes: statSync(file).size, title: img.title, description: img.description, language: img.language, sample: img.sample, run: img.run });
}
writeIfChanged(join(OUT, 'images.json'), JSON.stringify(list, null, 2) + '\n');
buildEmbed();
log(`done in ${secs(t0)}`);
