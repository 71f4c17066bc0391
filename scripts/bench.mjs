// `npm run bench`: the same guest workloads under layerbox and its peers, node:wasi
// (real directories), @bjorn3/browser_wasi_shim and @wasmer/wasi (both in memory),
// in one run; prints times and ratios as Markdown tables and writes them to
// bench/results/peers.json. Every measurement runs in its own process.
//
//   npm run bench                 best of BENCH_REPS (default 3) runs each
//   npm run bench -- --quick      one run each, SQLite with 10k rows (a smoke test;
//                                 written to bench/results/peers-quick.json instead)
//   npm run bench -- --report     also the scale benchmark (bench/scale.mjs: mount,
//                                 commit, many boxes), then bench/results/REPORT.md
//                                 with SVG charts (bench/report.mjs)
//
// Program rows also give each process's peak RSS. The write-path rows (bench/writes.mjs)
// run whole `layerbox run` commands against node:wasi under GNU time: wall, CPU, peak RSS,
// and the store's packs and bytes; their sizes scale with BENCH_SQLITE_TX,
// BENCH_FSYNC_FILES, BENCH_WRITE_MB and BENCH_BIG_WRITE_MB.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newest } from './lib/newest.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');
const REPS = quick ? 1 : Number(process.env.BENCH_REPS ?? 3);
if (!(REPS >= 1)) throw new Error(`BENCH_REPS must be a positive number, not ${process.env.BENCH_REPS}`);
const SQLITE_ROWS = quick ? 10_000 : 100_000;
/** A child that takes longer than this is stopped and reported as an error. */
const CHILD_TIMEOUT_MS = 180_000;
const log = (s) => process.stderr.write(`${s}\n`);

// ---- what the runs need ---------------------------------------------------------

execFileSync('bash', [join(root, 'scripts/build-bench.sh')], { stdio: 'inherit' });

const dist = join(root, 'dist/node.js');
if (!existsSync(dist) || statSync(dist).mtimeMs < Math.max(newest(join(root, 'src')), newest(join(root, 'runtime')))) {
  log('bundling dist/ (node esbuild.config.mjs)...');
  const r = spawnSync(process.execPath, ['esbuild.config.mjs'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0 && !existsSync(dist)) throw new Error('bench: bundling dist/ failed');
}
if (!existsSync(join(root, 'test/fixtures/sqlite3.wasm'))) execFileSync('bash', [join(root, 'scripts/build-sqlite.sh')], { stdio: 'inherit' });

const fixtures = join(root, 'bench/.fixtures');
// The tree the syscall loops see at /sandbox: list/ (10k empty files) and big.bin (100 MiB).
const syscallTree = join(fixtures, 'syscalls');
mkdirSync(syscallTree, { recursive: true });
// Older runs kept list/ and big.bin at the top of bench/.fixtures: moved, not made again.
for (const name of ['list', 'big.bin']) {
  if (existsSync(join(fixtures, name)) && !existsSync(join(syscallTree, name))) renameSync(join(fixtures, name), join(syscallTree, name));
}
if (!existsSync(join(syscallTree, 'list'))) {
  log('preparing fixtures (10k-entry directory)...');
  rmSync(join(syscallTree, 'list.tmp'), { recursive: true, force: true });
  mkdirSync(join(syscallTree, 'list.tmp'));
  for (let i = 0; i < 10000; i++) writeFileSync(join(syscallTree, 'list.tmp', `entry-${i}`), '');
  renameSync(join(syscallTree, 'list.tmp'), join(syscallTree, 'list'));
}
if (!existsSync(join(syscallTree, 'big.bin'))) {
  log('preparing fixtures (100 MiB file)...');
  const fd = openSync(join(syscallTree, 'big.bin.tmp'), 'w');
  for (let i = 0; i < 100; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  renameSync(join(syscallTree, 'big.bin.tmp'), join(syscallTree, 'big.bin'));
}

// The Ruby stdlib (extracted from ruby+stdlib.wasm once) laid out as a root: usr/local/lib/ruby.
const rubyLib = join(fixtures, 'ruby-root/usr/local/lib/ruby');
if (!existsSync(rubyLib)) {
  const { extractRubyStdlib, defaultOut } = await import('./ruby-stdlib.mjs');
  log('preparing fixtures (Ruby stdlib)...');
  await extractRubyStdlib(defaultOut, { log: () => {} });
  mkdirSync(join(rubyLib, '..'), { recursive: true });
  cpSync(defaultOut, `${rubyLib}.tmp`, { recursive: true });
  renameSync(`${rubyLib}.tmp`, rubyLib);
}

// ---- one measurement ------------------------------------------------------------

const runtimes = ['layerbox', 'node-wasi', 'shim', 'wasmer'];
const names = { layerbox: 'layerbox', 'node-wasi': 'node:wasi', shim: 'browser_wasi_shim', wasmer: '@wasmer/wasi' };

/** Runs one child (a measurement); its last stdout line is JSON, or it died. */
function child(script, args) {
  const r = spawnSync(process.execPath, ['--no-incremental-marking', '--expose-gc', join(root, script), ...args], { encoding: 'utf8', timeout: CHILD_TIMEOUT_MS, maxBuffer: 64 << 20 });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (last.startsWith('{')) {
    try {
      return JSON.parse(last);
    } catch {}
  }
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGTERM') return { error: `timed out after ${CHILD_TIMEOUT_MS / 1000} s` };
  if (r.signal) return { error: `process killed by ${r.signal}` };
  const lines = (r.stderr || r.stdout || '').split('\n').map((l) => l.trim());
  const why = lines.find((l) => /FATAL|Error|error/.test(l) && !/ExperimentalWarning/.test(l)) ?? lines.filter(Boolean).pop();
  return { error: (why || `exit ${r.status}`).slice(0, 200) };
}

/** Best of REPS; the first error ends the cell (and is what it shows). `pick` gives ms or throws. */
function best(run, pick) {
  let ms = Infinity;
  let extra = {};
  for (let i = 0; i < REPS; i++) {
    const r = run();
    if (r.error) return { error: r.error };
    let m;
    try {
      m = pick(r);
    } catch (e) {
      return { error: e.message };
    }
    if (m < ms) {
      ms = m;
      extra = r;
    }
  }
  return { ms, extra };
}

// ---- the syscall loops: guest-measured (CLOCK_MONOTONIC inside bench.wasm) ------

const bigSize = statSync(join(syscallTree, 'big.bin')).size;
const loops = [
  { mode: 'meta', n: 20000, label: 'stat+open+close x20k', check: (c) => c === 20000 },
  { mode: 'create', n: 2000, label: 'create 2k small files', check: (c) => c === 2000 * 100 },
  // Runtimes differ on whether readdir lists . and ..
  { mode: 'list', n: 0, label: 'readdir of 10k entries', check: (c) => c === 10000 || c === 10002 },
  { mode: 'read', n: 0, label: '100 MiB sequential read', check: (c) => c === bigSize },
  { mode: 'reread', n: 0, label: '100 MiB sequential read, second pass', check: (c) => c === bigSize },
];

const t0 = Date.now();
const rows = [];
for (const w of loops) {
  const results = {};
  for (const rt of runtimes) {
    const cell = best(
      () => child('bench/runner.mjs', [rt, w.mode, String(w.n), syscallTree]),
      (r) => {
        if (!w.check(r.check)) throw new Error(`wrong result (checksum ${r.check})`);
        return r.ns / 1e6;
      },
    );
    results[rt] = cell.error ? { error: cell.error } : { ms: cell.ms };
    log(`  ${w.label} / ${names[rt]}: ${fmt(results[rt])}`);
  }
  rows.push({ group: 'syscalls', workload: w.label, results });
}

// ---- programs: wall time on the host around the run ------------------------------

const sqliteLabel = `SQLite: insert ${SQLITE_ROWS / 1000}k rows (one transaction)`;
const rubyLabel = 'Ruby: boot + require 12 stdlib libraries';
const programs = [
  { label: sqliteLabel, args: ['sqlite', String(SQLITE_ROWS)] },
  { label: rubyLabel, args: ['ruby', '-'] },
];
const notes = { flush: null, rubyInit: {} };
for (const p of programs) {
  const results = {};
  for (const rt of runtimes) {
    const cell = best(() => child('bench/programs.mjs', [rt, ...p.args, fixtures]), (r) => r.ms);
    results[rt] = cell.error ? { error: cell.error } : { ms: cell.ms, rssKiB: cell.extra.rssKiB };
    if (!cell.error && cell.extra.flushMs !== undefined) notes.flush = cell.extra.flushMs;
    if (!cell.error && cell.extra.initMs !== undefined) notes.rubyInit[rt] = cell.extra.initMs;
    log(`  ${p.label} / ${names[rt]}: ${fmt(results[rt])}${results[rt].rssKiB ? `, ${fmtRss(results[rt])} peak RSS` : ''}`);
  }
  rows.push({ group: 'programs', workload: p.label, results });
}

// ---- the tables ------------------------------------------------------------------

function fmtRss(c) {
  return c.error || !c.rssKiB ? 'n/a' : `${(c.rssKiB / 1024).toFixed(1)} MiB`;
}
function fmt(c) {
  return c.error ? `error: ${c.error.replace(/\|/g, '/').slice(0, 70)}` : `${c.ms.toFixed(1)} ms`;
}
const ratio = (a, b) => (a.error || b.error ? 'n/a' : `${(a.ms / b.ms).toFixed(2)}x`);
const peers = runtimes.slice(1);

function table(group, first) {
  console.log(`\n| ${first} | ${runtimes.map((r) => names[r]).join(' | ')} | ${peers.map((p) => `layerbox / ${names[p]}`).join(' | ')} |`);
  console.log(`| ${Array(1 + runtimes.length + peers.length).fill('---').join(' | ')} |`);
  for (const r of rows.filter((x) => x.group === group)) {
    console.log(`| ${r.workload} | ${runtimes.map((rt) => fmt(r.results[rt])).join(' | ')} | ${peers.map((p) => ratio(r.results.layerbox, r.results[p])).join(' | ')} |`);
  }
}

table('syscalls', 'workload');
console.log(`\nbest of ${REPS} run${REPS > 1 ? 's' : ''} each, measured inside the guest (CLOCK_MONOTONIC; @wasmer/wasi's clock ticks in whole milliseconds); ratio < 1 means layerbox is faster.`);
table('programs', 'program');
const initNote = Object.entries(notes.rubyInit)
  .map(([rt, ms]) => `${names[rt]} ${ms.toFixed(0)} ms`)
  .join(', ');
console.log(
  `\nwall time on the host around the run (module compiled and files loaded beforehand), best of ${REPS}.` +
    ` SQLite: \`sqlite3 /data/bench.db "<SQL>"\` with a recursive CTE, database on the guest's writable file system (a box; a real temp directory for node:wasi; memory for the others).` +
    (notes.flush !== null ? ` layerbox's box.flush() into its directory store afterwards took ${notes.flush.toFixed(1)} ms more (not included).` : '') +
    ` Ruby: bare ruby.wasm, stdlib at /usr/local/lib/ruby from an image layer (layerbox), a real directory (node:wasi), memory (the others); the time includes starting the VM` +
    (initNote ? ` (of which VM start: ${initNote})` : '') +
    '.',
);
console.log(`\n| program: peak RSS | ${runtimes.map((r) => names[r]).join(' | ')} | ${peers.map((p) => `layerbox / ${names[p]}`).join(' | ')} |`);
console.log(`| ${Array(1 + runtimes.length + peers.length).fill('---').join(' | ')} |`);
for (const r of rows.filter((x) => x.group === 'programs')) {
  const rssRatio = (a, b) => (a.rssKiB && b.rssKiB ? `${(a.rssKiB / b.rssKiB).toFixed(2)}x` : 'n/a');
  console.log(`| ${r.workload} | ${runtimes.map((rt) => fmtRss(r.results[rt])).join(' | ')} | ${peers.map((p) => rssRatio(r.results.layerbox, r.results[p])).join(' | ')} |`);
}
console.log('\npeak RSS of the process that ran the program (process.resourceUsage().maxRSS at its end), in the best-time run.');

// ---- the write path: whole `layerbox run` commands against node:wasi ------------

const { writeBench, writesMarkdown, writesNote } = await import('../bench/writes.mjs');
log('\nwrite path (whole commands under GNU time)...');
const w0 = Date.now();
const writes = writeBench(root, { quick, reps: REPS, log });
log(`write path: ${((Date.now() - w0) / 1000).toFixed(0)} s`);
if (writes.skipped) console.log(`\nwrite-path workloads skipped: ${writes.skipped}`);
else console.log(`\n${writesMarkdown(writes.rows)}\n\n${writesNote}`);

const { ociBench } = await import('../bench/oci.mjs');
const oci = ociBench(root, REPS);
if (oci.skipped) console.log(`\nOCI workloads skipped: ${oci.skipped}`);
else {
  console.log(`\n| OCI workload | layerbox | peer | peer command | layerbox / peer |`);
  console.log(`| --- | --- | --- | --- | --- |`);
  for (const r of oci.rows) console.log(`| ${r.label} | ${r.layerbox.toFixed(0)} ms | ${r.peer.toFixed(0)} ms | ${r.peerName} | ${(r.layerbox / r.peer).toFixed(2)}x |`);
  console.log('\nwall time of whole commands (process start included), best of each.');
}

const resultsDir = join(root, 'bench/results');
mkdirSync(resultsDir, { recursive: true });
const json = { date: new Date().toISOString(), node: process.version, reps: REPS, rows, writes: writes.skipped ? { skipped: writes.skipped } : writes.rows, oci: oci.skipped ? [] : oci.rows.map((r) => ({ label: r.label, layerbox: r.layerbox, peer: r.peer, peerName: r.peerName })) };
// A smoke test (--quick) does not replace the results of a full run.
const outName = quick ? 'peers-quick.json' : 'peers.json';
writeFileSync(join(resultsDir, outName), `${JSON.stringify(json, (k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v), 2)}\n`);
log(`\nwrote bench/results/${outName} (${((Date.now() - t0) / 1000).toFixed(0)} s of measuring)`);

if (process.argv.includes('--report')) {
  const { scaleBench, scaleMarkdown } = await import('../bench/scale.mjs');
  const { writeReport } = await import('../bench/report.mjs');
  log('\nscale benchmark (mount, commit, many boxes)...');
  const scale = await scaleBench(root, { quick });
  console.log(`\n${scaleMarkdown(scale)}`);
  const scaleName = quick ? 'scale-quick.json' : 'scale.json';
  writeFileSync(join(resultsDir, scaleName), `${JSON.stringify(scale, null, 2)}\n`);
  const outDir = quick ? join(resultsDir, 'quick') : resultsDir;
  writeReport({ peers: json, scale, outDir });
  log(`wrote bench/results/${scaleName} and ${quick ? 'bench/results/quick/' : 'bench/results/'}REPORT.md with its charts`);
}
