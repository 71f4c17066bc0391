// One program benchmark in its own process:
//   node --no-incremental-marking bench/programs.mjs RUNTIME PROGRAM ARG FIXTURES
// RUNTIME: layerbox | node-wasi | shim | wasmer. PROGRAM:
//   sqlite ROWS  the SQLite shell (test/fixtures/sqlite3.wasm) creates /data/bench.db and
//                inserts ROWS rows in one transaction (a recursive CTE), then counts them
//   ruby -       bare ruby.wasm (@ruby/3.4-wasm-wasi) requires a dozen stdlib libraries
//                from /usr/local/lib/ruby, served by the runtime's file system
// FIXTURES is bench/.fixtures; FIXTURES/ruby-root/usr/local/lib/ruby holds the stdlib.
// Compiling the module and loading files into the runtime are not timed. The time is
// wall time on the host around the run: start() of the SQLite command; for ruby (a
// reactor) instantiating and initializing the VM plus evaluating the requires.
// Prints one JSON line: { ms, rssKiB, ... } or { error }; rssKiB is this process's
// peak RSS (process.resourceUsage().maxRSS): the runtime, the module and the run.
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from './child.mjs';

const [runtime, program, arg, fixtures] = process.argv.slice(2);
const root = fileURLToPath(new URL('..', import.meta.url));
const dec = new TextDecoder();

const RUBY_REQUIRES = ['json', 'set', 'erb', 'time', 'optparse', 'fileutils', 'pathname', 'uri', 'logger', 'shellwords', 'digest', 'pp'];
const RUBY_CODE = `$stdout.sync = true
${RUBY_REQUIRES.map((r) => `require '${r}'`).join('\n')}
puts JSON.generate([Set[1, 2].size, Time.iso8601('2026-01-01T00:00:00Z').year, ERB.new('<%= 6 * 7 %>').result, Shellwords.split('a "b c"').size])
`;
const RUBY_EXPECT = '[2,2026,"42",2]\n';
const RUBY_ARGS = ['ruby', '-EUTF-8', '-e_=0'];
const RUBY_DIR = '/usr/local/lib/ruby';

/** The SQLite job: SQL as the shell's argument (it reads no stdin then), list mode. */
function sqliteJob(rows) {
  const sql = `CREATE TABLE t(a INTEGER, b TEXT); BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows}) INSERT INTO t SELECT x, 'row number ' || x FROM c; COMMIT; SELECT count(*), sum(a) FROM t;`;
  return { args: ['sqlite3', '-batch', '-list', '/data/bench.db', sql], expect: `${rows}|${(rows * (rows + 1)) / 2}\n` };
}

/** A host directory as browser_wasi_shim's in-memory tree. */
function shimTree(shim, dir) {
  const m = new Map();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) m.set(e.name, new shim.Directory(shimTree(shim, p)));
    else if (e.isFile()) m.set(e.name, new shim.File(readFileSync(p)));
  }
  return m;
}

/** Copies a host directory into a wasmer MemFS at `to` (which exists). */
function wasmerLoad(fs, dir, to) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const t = `${to}/${e.name}`;
    if (e.isDirectory()) {
      fs.createDir(t);
      wasmerLoad(fs, p, t);
    } else if (e.isFile()) {
      const f = fs.open(t, { read: true, write: true, create: true });
      f.write(readFileSync(p));
      f.free();
    }
  }
}

/** wasmer's WASI with the two members RubyVM.instantiateModule uses (wasiImport, initialize). */
function wasmerWasip1(wasi, module) {
  return {
    wasiImport: wasi.getImports(module).wasi_snapshot_preview1,
    initialize(instance) {
      wasi.instantiate(instance);
      instance.exports._initialize();
    },
  };
}

const now = () => process.hrtime.bigint();
const msSince = (t0) => Number(now() - t0) / 1e6;

/** Garbage left by loading the files is collected before the clock starts, for every runtime alike. */
const settle = () => globalThis.gc?.();

/** Times a command's start(): { ms, code }. */
function timeStart(start) {
  settle();
  const t0 = now();
  const code = start();
  return { ms: msSince(t0), code };
}

/** Times ruby: VM instantiation and initialization, then the requires. */
async function timeRuby(module, wasip1) {
  const { RubyVM } = await import('@ruby/wasm-wasi');
  settle();
  const t0 = now();
  const { vm } = await RubyVM.instantiateModule({ module, wasip1, args: RUBY_ARGS });
  const initMs = msSince(t0);
  vm.eval(RUBY_CODE);
  return { ms: msSince(t0), initMs };
}

async function main() {
  const wasmPath = program === 'sqlite' ? join(root, 'test/fixtures/sqlite3.wasm') : join(root, 'node_modules/@ruby/3.4-wasm-wasi/dist/ruby.wasm');
  const module = await WebAssembly.compile(readFileSync(wasmPath));
  if (program !== 'sqlite' && program !== 'ruby') throw new Error(`unknown program ${program}`);
  const job = program === 'sqlite' ? sqliteJob(Number(arg)) : null;
  const stdlib = join(fixtures, 'ruby-root', RUBY_DIR);
  const out = [];
  const err = [];
  let result;

  if (runtime === 'layerbox') {
    const { openStore, runModule } = await import('../dist/node.js');
    const dir = mkdtempSync(join(tmpdir(), 'lb-progbench-'));
    try {
      const store = await openStore(join(dir, 'store'));
      if (job) {
        const tree = join(dir, 'tree');
        for (const d of ['data', 'tmp']) mkdirSync(join(tree, d), { recursive: true });
        await store.importDirectory(tree, { tag: 'sqlite' });
        const box = await store.createBox('bench', { image: 'sqlite' });
        let r;
        const t = timeStart(() => (r = runModule(module, [{ guest: '/', fs: box.fs }], { args: job.args })).exitCode);
        out.push(dec.decode(r.stdout));
        err.push(dec.decode(r.stderr));
        if (t.code !== 0) throw new Error(`exit ${t.code}: ${err.join('')}`);
        // Persisting the box's changes into the directory store comes after the run; reported apart.
        const f0 = now();
        await box.flush();
        result = { ms: t.ms, flushMs: msSince(f0) };
      } else {
        // An image whose one layer holds the stdlib at /usr/local/lib/ruby.
        await store.importDirectory(join(fixtures, 'ruby-root'), { tag: 'ruby' });
        const box = await store.createBox('bench', { image: 'ruby' });
        // ruby.wasm embeds a small /usr of its own; a second preopen at the stdlib's
        // directory is the longer prefix, so the guest reaches the image's stdlib there.
        const wasi = box.wasi({ args: RUBY_ARGS, mounts: [{ guest: RUBY_DIR, fs: box.fs, path: RUBY_DIR }], stdout: (b) => out.push(dec.decode(b)), stderr: (b) => err.push(dec.decode(b)) });
        result = await timeRuby(module, wasi);
      }
      await store.backend.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else if (runtime === 'node-wasi') {
    const { WASI } = await import('node:wasi');
    const dir = mkdtempSync(join(tmpdir(), 'nw-progbench-'));
    try {
      const outFd = openSync(join(dir, '.stdout'), 'w');
      const errFd = openSync(join(dir, '.stderr'), 'w');
      const stdio = { stdout: outFd, stderr: errFd, returnOnExit: true };
      try {
        if (job) {
          const rootDir = join(dir, 'root');
          for (const d of ['data', 'tmp']) mkdirSync(join(rootDir, d), { recursive: true });
          const wasi = new WASI({ version: 'preview1', args: job.args, env: {}, preopens: { '/': rootDir }, ...stdio });
          const inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
          const t = timeStart(() => wasi.start(inst));
          if (t.code !== 0) throw new Error(`exit ${t.code}: ${readFileSync(join(dir, '.stderr'), 'utf8')}`);
          result = { ms: t.ms };
        } else {
          // The stdlib straight from a real directory.
          const wasi = new WASI({ version: 'preview1', args: RUBY_ARGS, env: {}, preopens: { [RUBY_DIR]: stdlib }, ...stdio });
          result = await timeRuby(module, wasi);
        }
      } finally {
        closeSync(outFd);
        closeSync(errFd);
      }
      out.push(readFileSync(join(dir, '.stdout'), 'utf8'));
      err.push(readFileSync(join(dir, '.stderr'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else if (runtime === 'shim') {
    const shim = await import('@bjorn3/browser_wasi_shim');
    const stdio = [new shim.OpenFile(new shim.File([])), new shim.ConsoleStdout((b) => out.push(dec.decode(b))), new shim.ConsoleStdout((b) => err.push(dec.decode(b)))];
    if (job) {
      const rootDir = new shim.PreopenDirectory('/', new Map([['data', new shim.Directory(new Map())], ['tmp', new shim.Directory(new Map())]]));
      const wasi = new shim.WASI(job.args, [], [...stdio, rootDir], { debug: false });
      const inst = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
      const t = timeStart(() => wasi.start(inst));
      if (t.code !== 0) throw new Error(`exit ${t.code}: ${err.join('')}`);
      result = { ms: t.ms };
    } else {
      const lib = new shim.PreopenDirectory(RUBY_DIR, shimTree(shim, stdlib));
      const wasi = new shim.WASI(RUBY_ARGS, [], [...stdio, lib], { debug: false });
      result = await timeRuby(module, wasi);
    }
  } else if (runtime === 'wasmer') {
    const { init, WASI, MemFS } = await import('@wasmer/wasi');
    await init();
    const fs = new MemFS();
    if (job) {
      fs.createDir('/data');
      fs.createDir('/tmp');
      const wasi = new WASI({ args: job.args, env: {}, fs });
      const inst = await wasi.instantiate(module, {});
      const t = timeStart(() => wasi.start(inst));
      out.push(wasi.getStdoutString());
      err.push(wasi.getStderrString());
      if (t.code !== 0) throw new Error(`exit ${t.code}: ${err.join('')}`);
      result = { ms: t.ms };
    } else {
      // fd 3 is always the MemFS's `/`, which ruby.wasm's embedded /usr shadows; a
      // second preopen at the stdlib's directory is the longer prefix.
      let p = '';
      for (const part of RUBY_DIR.split('/').slice(1)) fs.createDir((p += `/${part}`));
      wasmerLoad(fs, stdlib, RUBY_DIR);
      const wasi = new WASI({ args: RUBY_ARGS, env: {}, preopens: { [RUBY_DIR]: RUBY_DIR }, fs });
      try {
        result = await timeRuby(module, wasmerWasip1(wasi, module));
      } finally {
        out.push(wasi.getStdoutString());
        err.push(wasi.getStderrString());
      }
    }
  } else throw new Error(`unknown runtime ${runtime}`);

  const got = out.join('');
  const want = job ? job.expect : RUBY_EXPECT;
  if (got !== want) throw new Error(`wrong output ${JSON.stringify(got.slice(0, 120))}${err.join('').trim() ? ` (stderr: ${err.join('').trim().slice(0, 200)})` : ''}`);
  return { runtime, program, ...result, rssKiB: process.resourceUsage().maxRSS };
}

await report(main);
