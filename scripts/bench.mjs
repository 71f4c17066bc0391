// `npm run bench`: the same guest workloads under layerbox, node:wasi (real directory)
// and @bjorn3/browser_wasi_shim (in memory), in one run; prints times and ratios.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, existsSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
execFileSync('bash', [join(root, 'scripts/build-bench.sh')], { stdio: 'inherit' });
if (!existsSync(join(root, 'dist/node.js'))) execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

const fixtures = join(root, 'bench/.fixtures');
if (!existsSync(join(fixtures, 'big.bin'))) {
  console.log('preparing fixtures (10k-entry directory, 100 MiB file)...');
  mkdirSync(join(fixtures, 'list'), { recursive: true });
  for (let i = 0; i < 10000; i++) writeFileSync(join(fixtures, 'list', `entry-${i}`), '');
  const fd = openSync(join(fixtures, 'big.bin.tmp'), 'w');
  for (let i = 0; i < 100; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  execFileSync('mv', [join(fixtures, 'big.bin.tmp'), join(fixtures, 'big.bin')]);
}

const workloads = [
  { mode: 'meta', n: 20000, label: 'stat+open+close x20k' },
  { mode: 'create', n: 2000, label: 'create 2k small files' },
  { mode: 'list', n: 0, label: 'readdir of 10k entries' },
  { mode: 'read', n: 0, label: '100 MiB sequential read' },
];
const runtimes = ['layerbox', 'node-wasi', 'shim'];
const REPS = Number(process.env.BENCH_REPS ?? 3);

function once(runtime, w) {
  const r = spawnSync(process.execPath, ['--no-incremental-marking', join(root, 'bench/runner.mjs'), runtime, w.mode, String(w.n), fixtures], { encoding: 'utf8' });
  if (r.status !== 0) return { error: (r.stderr || r.stdout).trim().split('\n').slice(-1)[0] || `exit ${r.status}` };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const rows = [];
for (const w of workloads) {
  const row = { workload: w.label };
  for (const rt of runtimes) {
    let best = Infinity, error;
    for (let i = 0; i < REPS; i++) {
      const r = once(rt, w);
      if (r.error) { error = r.error; break; }
      best = Math.min(best, r.ns);
    }
    row[rt] = error ? { error } : { ms: best / 1e6 };
  }
  rows.push(row);
  process.stderr.write('.');
}
process.stderr.write('\n');

const fmt = (c) => (c.error ? `error: ${c.error.slice(0, 40)}` : `${c.ms.toFixed(1)} ms`);
const ratio = (a, b) => (a.error || b.error ? 'n/a' : `${(a.ms / b.ms).toFixed(2)}x`);
console.log(`\n| workload | layerbox | node:wasi | browser_wasi_shim | layerbox / node:wasi | layerbox / shim |`);
console.log(`| --- | --- | --- | --- | --- | --- |`);
for (const r of rows) console.log(`| ${r.workload} | ${fmt(r.layerbox)} | ${fmt(r['node-wasi'])} | ${fmt(r.shim)} | ${ratio(r.layerbox, r['node-wasi'])} | ${ratio(r.layerbox, r.shim)} |`);
console.log(`\nbest of ${REPS} runs each, measured inside the guest (CLOCK_MONOTONIC); ratio < 1 means layerbox is faster.`);

const { ociBench } = await import('../bench/oci.mjs');
const oci = ociBench(root, REPS);
if (oci.skipped) console.log(`\nOCI workloads skipped: ${oci.skipped}`);
else {
  console.log(`\n| OCI workload | layerbox | peer | peer command | layerbox / peer |`);
  console.log(`| --- | --- | --- | --- | --- |`);
  for (const r of oci.rows) console.log(`| ${r.label} | ${r.layerbox.toFixed(0)} ms | ${r.peer.toFixed(0)} ms | ${r.peerName} | ${(r.layerbox / r.peer).toFixed(2)}x |`);
  console.log('\nwall time of whole commands (process start included), best of each.');
}
