// Write-path rows of `npm run bench`: guests that write a lot and fsync often, run
// as a user runs them, one whole process each: `layerbox run` (dist/cli.js) over a
// directory store against node:wasi (bench/wasi-child.mjs, `node --no-incremental-marking`)
// on a real directory on the same file system. Each process is measured by GNU time
// (`/usr/bin/time -f '%e %U %S %M'`): wall time, CPU time (user + system) and peak
// RSS of the process running the guest. Store figures: *.pack files under the store
// and the bytes of every file in it (as `du -sb`), before and after the run.
//
// Sizes (defaults are the figures of the issue; --quick divides them):
//   BENCH_SQLITE_TX     transactions of 1,000 rows in the SQLite sort (default 36, about 150 fsyncs)
//   BENCH_FSYNC_FILES   one-byte files, each fsynced (default 3000)
//   BENCH_WRITE_MB      MiB written without fsync (default 400)
//   BENCH_BIG_WRITE_MB  MiB written under --memory 16M (default 1536)
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TIME = '/usr/bin/time';
/** A whole command that takes longer is stopped (by `timeout`, so its children go too) and reported as an error. */
const TIMEOUT_S = 600;

function size(name, def, quickDiv, quick) {
  const raw = process.env[name];
  const n = raw === undefined ? (quick ? Math.max(1, Math.round(def / quickDiv)) : def) : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${raw}`);
  return n;
}

/** Packs and bytes of a store directory. */
export function storeStats(dir) {
  let packs = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        bytes += lstatSync(p).size;
        if (e.name.endsWith('.pack')) packs++;
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return { packs, bytes };
}

/** Runs a command under GNU time: { wallMs, cpuMs, rssKiB, stdout } or { error }. */
function measured(cmd, args, dir) {
  const tfile = join(dir, '.time');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(TIME, ['-f', '%e %U %S %M', '-o', tfile, 'timeout', '-k', '5', String(TIMEOUT_S), cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status === 124) return { error: `timed out after ${TIMEOUT_S} s` };
  if (r.status !== 0) {
    const lines = `${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).filter((l) => l && !/ExperimentalWarning|trace-warnings|sqliterc|^Command exited/.test(l));
    return { error: `${(lines[0] ?? '').slice(0, 160)} (exit ${r.status ?? r.signal})` };
  }
  const last = readFileSync(tfile, 'utf8').trim().split('\n').pop() ?? '';
  const [, user, sys, rss] = last.split(' ').map(Number);
  if (![user, sys, rss].every(Number.isFinite)) return { error: `unreadable GNU time output: ${last}` };
  return { wallMs, cpuMs: (user + sys) * 1000, rssKiB: rss, stdout: r.stdout };
}

/** The guest's output minus the JSON line wasi-child.mjs adds. */
const guestOut = (s) => s.split('\n').filter((l) => !l.startsWith('{"code"')).join('\n');

/** SQL for the sort: `tx` small transactions (each commit fsyncs the journal and the database), a sort over /tmp, an index. */
function sortSql(tx) {
  const parts = ['PRAGMA cache_size=-2000;', 'CREATE TABLE t(a INTEGER, b TEXT);'];
  for (let i = 0; i < tx; i++) parts.push(`BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) INSERT INTO t SELECT ${i * 1000} + x, hex(randomblob(48)) FROM c; COMMIT;`);
  // 96 hex digits a row: past the 2 MB cache, so the sorter and CREATE INDEX spill to temp files in /tmp.
  parts.push('SELECT count(*), sum(length(b)) FROM (SELECT b FROM t ORDER BY b);', 'CREATE INDEX tb ON t(b);', 'SELECT count(*) FROM t INDEXED BY tb WHERE b >= \'\';');
  return { sql: parts.join(' '), expect: `${tx * 1000}|${tx * 1000 * 96}\n${tx * 1000}\n` };
}

/**
 * The rows; `log` gets one line per measurement. The SQLite row is the best of `reps`
 * runs (its time is a target); the others, long and measured for memory and bytes, run once. Returns { rows } or { skipped }.
 * A row: { label, sizeVar, note, layerbox, peer, store? } where layerbox/peer are
 * measured() results (plus fsyncs for the peer) and store is { before, after }.
 */
export function writeBench(root, { quick = false, reps = 1, log = () => {} } = {}) {
  if (!existsSync(TIME)) spawnSync('bash', [join(root, 'scripts/ensure-test-tools.sh')], { stdio: 'inherit' });
  if (!existsSync(TIME)) return { skipped: 'GNU time (/usr/bin/time) missing: bash scripts/ensure-test-tools.sh' };
  const sqliteTx = size('BENCH_SQLITE_TX', 36, 3, quick);
  const files = size('BENCH_FSYNC_FILES', 3000, 10, quick);
  const writeMb = size('BENCH_WRITE_MB', 400, 10, quick);
  const bigMb = size('BENCH_BIG_WRITE_MB', 1536, 10, quick);
  const cli = join(root, 'dist/cli.js');
  const sqlite = join(root, 'test/fixtures/sqlite3.wasm');
  const writes = join(root, 'bench/writes.wasm');
  const wasiChild = join(root, 'bench/wasi-child.mjs');

  /** A fresh directory with a store holding image `base` (/tmp and /data) and, if `box`, a box over it. */
  function setup(box, limits = []) {
    const dir = mkdtempSync(join(tmpdir(), 'lb-writebench-'));
    const tree = join(dir, 'tree');
    for (const d of ['tmp', 'data']) mkdirSync(join(tree, d), { recursive: true });
    const store = join(dir, 'store');
    const lb = (...a) => {
      const r = spawnSync(process.execPath, [cli, '--store', store, ...a], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`layerbox ${a.join(' ')}: ${r.stderr.trim()}`);
    };
    lb('image', 'import', tree, '--tag', 'base');
    if (box) lb('box', 'create', box, '--image', 'base', ...limits);
    return { dir, store, tree };
  }

  /** One layerbox run and one node:wasi run of the same guest; the output must be `expect`. */
  function pair({ label, sizeVar, note, reps = 1, wasm, runArgs, guestArgs, env = [], expect, box, limits }) {
    const row = { label, sizeVar, note, reps };
    let best = null;
    for (let i = 0; i < reps; i++) {
      const ctx = setup(box, limits);
      try {
        const before = storeStats(ctx.store);
        const envArgs = env.flatMap((kv) => ['--env', kv]);
        const m = measured(process.execPath, [cli, '--store', ctx.store, 'run', ...runArgs, ...envArgs, wasm, '--', ...guestArgs], ctx.dir);
        const after = storeStats(ctx.store);
        if (!m.error && m.stdout !== expect) Object.assign(m, { error: `wrong output ${JSON.stringify(m.stdout.slice(0, 80))}` });
        const cell = m.error ? { error: m.error } : { wallMs: m.wallMs, cpuMs: m.cpuMs, rssKiB: m.rssKiB, store: { before, after } };
        if (!best || best.error || (!cell.error && cell.wallMs < best.wallMs)) best = cell;
        if (cell.error) break;
      } finally {
        rmSync(ctx.dir, { recursive: true, force: true });
      }
    }
    row.layerbox = best;
    log(`  ${label} / layerbox: ${show(best)}`);
    best = null;
    for (let i = 0; i < reps; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'nw-writebench-'));
      try {
        const rootDir = join(dir, 'root');
        for (const d of ['tmp', 'data']) mkdirSync(join(rootDir, d), { recursive: true });
        const m = measured(process.execPath, ['--no-incremental-marking', wasiChild, wasm, rootDir, ...env, '--', 'guest', ...guestArgs], dir);
        let cell;
        if (m.error) cell = { error: m.error };
        else {
          const info = JSON.parse(m.stdout.trim().split('\n').pop());
          cell = guestOut(m.stdout) !== expect ? { error: `wrong output ${JSON.stringify(m.stdout.slice(0, 80))}` } : { wallMs: m.wallMs, cpuMs: m.cpuMs, rssKiB: m.rssKiB, fsyncs: info.fsyncs };
        }
        if (!best || best.error || (!cell.error && cell.wallMs < best.wallMs)) best = cell;
        if (cell.error) break;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    row.peer = best;
    log(`  ${label} / node:wasi: ${show(best)}`);
    return row;
  }

  const sort = sortSql(sqliteTx);
  const rows = [];
  rows.push(pair({
    label: `SQLite sort with fsync in a named box (${sqliteTx} transactions of 1k rows, ORDER BY, CREATE INDEX)`,
    sizeVar: `BENCH_SQLITE_TX=${sqliteTx}`,
    note: `best of ${reps}`,
    reps,
    wasm: sqlite, box: 'B', runArgs: ['--box', 'B'], guestArgs: ['-batch', '-list', '/data/sort.db', sort.sql], expect: sort.expect,
  }));
  rows.push(pair({
    label: `${files.toLocaleString('en-US')} one-byte files, each followed by fsync, in a box with --max-upper-bytes 2M`,
    sizeVar: `BENCH_FSYNC_FILES=${files}`,
    note: 'one run; target: store growth < 10 MB',
    wasm: writes, box: 'F', limits: ['--max-upper-bytes', '2M'], runArgs: ['--box', 'F'], guestArgs: ['fsync-files', '/data', String(files)], expect: `fsync-files ${files} ${files}\n`,
  }));
  const stream = (mb, extra) => ({ wasm: writes, guestArgs: ['stream', '/data/big', String(mb)], expect: `stream ${mb * 16} ${mb * 1048576}\n`, ...extra });
  rows.push(pair(stream(writeMb, { label: `write ${writeMb} MiB without fsync (64 KiB writes) in a named box`, sizeVar: `BENCH_WRITE_MB=${writeMb}`, note: 'one run', box: 'W', runArgs: ['--box', 'W'] })));
  rows.push(pair(stream(writeMb, { label: `write ${writeMb} MiB without fsync (64 KiB writes), run --image (ephemeral box)`, sizeVar: `BENCH_WRITE_MB=${writeMb}`, note: 'one run', runArgs: ['--image', 'base'] })));
  rows.push(pair(stream(bigMb, { label: `write ${bigMb} MiB without fsync (64 KiB writes) in a named box, --memory 16M`, sizeVar: `BENCH_BIG_WRITE_MB=${bigMb}`, note: 'one run; target: peak RSS follows a 64 MiB cache', box: 'M', runArgs: ['--box', 'M', '--memory', '16M'] })));
  return { rows };
}

function show(c) {
  if (c.error) return `error: ${c.error}`;
  return `${c.wallMs.toFixed(0)} ms wall, ${c.cpuMs.toFixed(0)} ms CPU, ${(c.rssKiB / 1024).toFixed(1)} MiB peak RSS${c.store ? `, store ${c.store.before.packs} -> ${c.store.after.packs} packs, ${c.store.before.bytes} -> ${c.store.after.bytes} bytes` : ''}${c.fsyncs !== undefined ? `, ${c.fsyncs} fsyncs` : ''}`;
}

const mib = (kib) => `${(kib / 1024).toFixed(kib >= 102400 ? 0 : 1)} MiB`;
const ms = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
const bytes = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} kB` : `${b} B`);
const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');

/** The rows as Markdown tables (a time/memory table, then the store table); shared by scripts/bench.mjs and bench/report.mjs. */
export function writesMarkdown(rows, { esc = (s) => s } = {}) {
  const out = [];
  out.push('| workload | layerbox wall | node:wasi wall | wall ratio | layerbox CPU | node:wasi CPU | CPU ratio | layerbox peak RSS | node:wasi peak RSS | RSS ratio | size |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    const a = r.layerbox, b = r.peer;
    const err = (c) => `error: ${esc(c.error.slice(0, 70))}`;
    const both = !a.error && !b.error;
    out.push(`| ${esc(r.label)} | ${a.error ? err(a) : ms(a.wallMs)} | ${b.error ? err(b) : ms(b.wallMs)} | ${both ? ratio(a.wallMs, b.wallMs) : 'n/a'} | ${a.error ? '—' : ms(a.cpuMs)} | ${b.error ? '—' : ms(b.cpuMs)} | ${both ? ratio(a.cpuMs, b.cpuMs) : 'n/a'} | ${a.error ? '—' : mib(a.rssKiB)} | ${b.error ? '—' : mib(b.rssKiB)} | ${both ? ratio(a.rssKiB, b.rssKiB) : 'n/a'} | ${esc(r.sizeVar)}; ${esc(r.note)} |`);
  }
  out.push('');
  out.push('| workload | packs before → after | store bytes before → after | store growth | guest fsyncs (counted under node:wasi) |');
  out.push('| --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const s = r.layerbox.store;
    out.push(`| ${esc(r.label)} | ${s ? `${s.before.packs} → ${s.after.packs}` : '—'} | ${s ? `${bytes(s.before.bytes)} → ${bytes(s.after.bytes)}` : '—'} | ${s ? bytes(s.after.bytes - s.before.bytes) : '—'} | ${r.peer.fsyncs ?? '—'} |`);
  }
  return out.join('\n');
}

export const writesNote =
  'Whole processes, each measured by GNU time: wall time, CPU time (user + system) and peak RSS of the process running the guest. ' +
  'layerbox: `layerbox --store DIR run ...` (dist/cli.js; with no --timeout the guest runs on its main thread) over a directory store; the time includes starting Node, opening the store and the end-of-run flush (a journal under 32 MiB stays as it is, durable; a larger one is folded into the store). ' +
  'node:wasi: `node --no-incremental-marking bench/wasi-child.mjs` with a real directory as / on the same file system (it also counts the guest\'s fsyncs). ' +
  'Store bytes: every file under the store, as du -sb. Ratios: layerbox / node:wasi, below 1 means layerbox is lower. ' +
  'Sizes come from the env vars in the size column (defaults: 36 transactions, 3,000 files, 400 MiB, 1,536 MiB; --quick divides them).';
