/**
 * Crash safety of the directory store: CLI processes that write to the store
 * (a flush, a commit, an import, a gc) are killed with SIGKILL at random
 * moments; after each kill, fresh processes and library calls must find a
 * sound store (fsck) in which every box and tag holds its old or its new
 * state, never a mix, and a lock left by the dead process must not block.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BoxRecord, type NodeStore, openStore } from '../runtime/node/index.js';
import { CLI, lb, makeTree } from './fixtures.js';

const ITERATIONS = 200;
const OPS = ['cp', 'commit', 'import', 'gc'] as const;
type Op = (typeof OPS)[number];
/** tmp/ may hold the dead writer's temp file until the next locked call cleans it; never more than a few. */
const TMP_BOUND = 3;
/**
 * A stale lock must be taken over at once, not after the 60 s lock timeout:
 * this bound only tells the two apart, with room for a host under load.
 */
const TAKEOVER_MS = 20_000;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let tmp: string;
let store: string;

/** Runs the CLI and SIGKILLs it after `delayMs` (unless it ended first); resolves when the process is gone (reaped). */
function runAndKill(argv: string[], delayMs: number): Promise<{ killed: boolean; code: number | null; pid: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CLI, '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let killed = false;
    const t = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) killed = child.kill('SIGKILL');
    }, delayMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ killed: killed && signal === 'SIGKILL', code, pid: child.pid!, stderr });
    });
  });
}

/** Runs the CLI to its end three times; returns its least wall time (a busy host makes single timings noisy). */
async function timed(argv: string[], between: () => Promise<unknown> = async () => {}): Promise<number> {
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    await between();
    const t0 = performance.now();
    const r = await runAndKill(argv, 1e9);
    expect(r.code, r.stderr).toBe(0);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

async function withStore<T>(fn: (s: NodeStore) => Promise<T>): Promise<T> {
  const s = await openStore(store);
  try { return await fn(s); } finally { await s.backend.close(); }
}

/** Resolves `p`, or fails if it takes longer than `ms` (a stale lock not taken over waits 60 s). */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => { t = setTimeout(() => rej(new Error(`${what} took over ${ms} ms (stale lock not taken over?)`)), ms); })]);
  } finally { clearTimeout(t); }
}

/** The digests a pack's index lists (its layout: data, index of u32 count + 48-byte entries, u64 index offset + magic). */
function packDigests(file: string): string[] {
  const b = readFileSync(file);
  const at = Number(b.readBigUInt64LE(b.length - 16));
  const count = b.readUInt32LE(at);
  return Array.from({ length: count }, (_, i) => `sha256:${b.subarray(at + 4 + i * 48, at + 36 + i * 48).toString('hex')}`);
}

/** A merged view: path -> type, mode and content hash (every file read in full, so every chunk is checked). */
type View = Map<string, string>;
function viewOf(fs: { readdir(p: string): Array<{ name: string }>; lstat(p: string): { type: string; mode: number; size: number }; readFile(p: string): Uint8Array; readlink(p: string): string }): View {
  const out: View = new Map();
  const walk = (dir: string) => {
    for (const e of fs.readdir(dir)) {
      const p = `${dir === '/' ? '' : dir}/${e.name}`;
      const st = fs.lstat(p);
      if (st.type === 'dir') { out.set(p, `dir ${st.mode.toString(8)}`); walk(p); }
      else if (st.type === 'symlink') out.set(p, `symlink ${fs.readlink(p)}`);
      else {
        const data = fs.readFile(p);
        if (data.length !== st.size) throw new Error(`${p}: read ${data.length} bytes of ${st.size}`);
        out.set(p, `file ${st.mode.toString(8)} ${sha(data)}`);
      }
    }
  };
  walk('/');
  return out;
}
const boxView = async (s: NodeStore, name: string) => viewOf((await s.openBox(name)).fs);
const imageView = async (s: NodeStore, ref: string) => viewOf((await s.ephemeralBox(ref)).fs);
const sameView = (a: View, b: View) => expect([...a].sort()).toEqual([...b].sort());

/** Every tag's and every box's merged view, read in full. */
async function everything(s: NodeStore): Promise<Map<string, View>> {
  const refs = await s.backend.readRefs();
  const out = new Map<string, View>();
  for (const t of Object.keys(refs.tags).sort()) out.set(`tag ${t}`, await imageView(s, t));
  for (const b of Object.keys(refs.boxes).sort()) out.set(`box ${b}`, await boxView(s, b));
  return out;
}

const stats = {
  kills: Object.fromEntries(OPS.map((o) => [o, 0])) as Record<Op, number>,
  completed: Object.fromEntries(OPS.map((o) => [o, 0])) as Record<Op, number>,
  /** After a kill: the store held the new state (the write went through before the kill). */
  newState: Object.fromEntries(OPS.map((o) => [o, 0])) as Record<Op, number>,
  staleLocks: 0,
  emptyLocks: 0,
  maxTakeoverMs: 0,
  leftoverTmp: 0,
  maxTmp: 0,
  packListStale: {} as Record<string, number>,
  /** Kills after which a reader going by packs.json (the HTTP store) could not find every blob the refs reach. */
  packListBroken: {} as Record<string, number>,
  cliFsck: 0,
  durations: {} as Record<Op, number>,
};

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`build the CLI first (npm run build): ${CLI} is missing`);
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-crash-'));
  store = join(tmp, 'store');
  await makeTree(join(tmp, 'tree'));
  await mkdir(join(tmp, 'imp/sub'), { recursive: true });
  await writeFile(join(tmp, 'imp/fixed.txt'), 'always the same\n');
  const ok = async (...argv: string[]) => { const r = await lb(store, ...argv); expect(r.code, r.stderr).toBe(0); return r; };
  await ok('image', 'import', join(tmp, 'tree'), '--tag', 'base');
  // cb: the box committed over and over; pb: the box 2 MB files are copied into.
  await ok('box', 'create', 'cb', '--image', 'base');
  await ok('box', 'create', 'pb', '--image', 'base');
  await writeFile(join(tmp, 'small.txt'), 'a change\n');
  await ok('cp', join(tmp, 'small.txt'), 'pb:/etc/config.txt');
  await ok('cp', join(tmp, 'small.txt'), 'cb:/data/notes.txt');
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the directory store under SIGKILL', () => {
  it(`keeps every box and tag whole through ${ITERATIONS} killed writers`, async () => {
    const t0 = performance.now();
    let n = 0;
    let bigSha: string | null = null; // pb:/big as last seen
    const newBig = async () => {
      const data = randomBytes(2_000_000);
      await writeFile(join(tmp, 'big.bin'), data);
      return sha(data);
    };
    /** Gives cb a change to commit (in-process, under the store lock, like any other writer). */
    const changeCb = (i: number) => withStore(async (s) => {
      const box = await s.openBox('cb');
      if (!box.fs.exists('/c')) box.fs.mkdir('/c');
      box.fs.writeFile('/c/data.bin', randomBytes(70_000 + (i % 7) * 1000));
      box.fs.writeFile(`/c/n${i}.txt`, `change ${i}\n`);
      if (i % 3 === 0 && box.fs.exists('/etc/remove-me')) box.fs.unlink('/etc/remove-me');
      await box.flush();
    });
    /** The next import's tree: one random 1 MB file, one that names the round, one that never changes. */
    const newImport = async (i: number): Promise<Map<string, string>> => {
      const big = randomBytes(1 << 20), note = Buffer.from(`import ${i}\n`);
      await writeFile(join(tmp, 'imp/big.bin'), big);
      await writeFile(join(tmp, 'imp/sub/note.txt'), note);
      return new Map([['/big.bin', sha(big)], ['/sub/note.txt', sha(note)], ['/fixed.txt', sha(Buffer.from('always the same\n'))]]);
    };

    // ---- measure each operation once, run to its end --------------------------------
    stats.durations.cp = await timed(['cp', join(tmp, 'big.bin'), 'pb:/big'], async () => (bigSha = await newBig()));
    let m = 0;
    stats.durations.commit = await timed(['commit', 'cb', '--tag', 't:measure'], () => changeCb(-1 - m++));
    stats.durations.import = await timed(['image', 'import', join(tmp, 'imp'), '--tag', 'x:measure'], () => newImport(-1));
    await withStore((s) => s.removeImage('x:measure'));
    stats.durations.gc = await timed(['gc']);

    for (let i = 0; i < ITERATIONS; i++) {
      const op = OPS[i % OPS.length]!;
      // The shortest run seen so far: a host that gets less busy than when it was measured must not turn kills into completions.
      const dur = stats.durations[op];
      // Half the kills anywhere in the run, half from 60% to 130% of it (past node's start-up, where the store is written).
      const delay = i % 8 < 4 ? Math.random() * dur * 0.95 : dur * (0.6 + Math.random() * 0.7);

      // ---- prepare, and note the state before ---------------------------------------
      let before: { rec: BoxRecord; view: View } | undefined;
      let all: Map<string, View> | undefined;
      let expectImport: Map<string, string> | undefined;
      let nextBig: string | undefined;
      let argv: string[];
      if (op === 'cp') {
        nextBig = await newBig();
        argv = ['cp', join(tmp, 'big.bin'), 'pb:/big'];
      } else if (op === 'commit') {
        await changeCb(i);
        before = await withStore(async (s) => ({ rec: await s.boxRecord('cb'), view: await boxView(s, 'cb') }));
        expect(before.rec.upper).not.toBeNull();
        argv = ['commit', 'cb', '--tag', `t:${i}`];
      } else if (op === 'import') {
        expectImport = await newImport(i);
        argv = ['image', 'import', join(tmp, 'imp'), '--tag', `x:${i}`];
      } else {
        all = await withStore(everything);
        argv = ['gc'];
      }

      // ---- run and kill -----------------------------------------------------------------
      const started = performance.now();
      const r = await runAndKill(argv, delay);
      if (r.killed) stats.kills[op]++;
      else {
        stats.completed[op]++;
        stats.durations[op] = Math.min(dur, performance.now() - started);
        expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
      }

      // ---- what the dead process left ---------------------------------------------------
      const tmpFiles = readdirSync(join(store, 'tmp'));
      stats.maxTmp = Math.max(stats.maxTmp, tmpFiles.length);
      if (tmpFiles.length) stats.leftoverTmp++;
      expect(tmpFiles.length, `tmp/ holds ${tmpFiles.join(', ')}`).toBeLessThanOrEqual(TMP_BOUND);
      // Nothing but the store's own files in its root (a lock moved aside and never removed would show here).
      const stray = readdirSync(store).filter((f) => !['layerbox-store.json', 'packs', 'tmp', 'refs.json', 'packs.json', 'lock', 'leases', 'journals'].includes(f));
      expect(stray).toEqual([]);
      const lockFile = join(store, 'lock');
      const staleLock = existsSync(lockFile);
      if (staleLock) {
        stats.staleLocks++;
        const held = readFileSync(lockFile, 'utf8');
        if (held === '') {
          // KNOWN BUG (see 'an empty lock file' below): killed between creating the lock file and writing its pid.
          // Nothing would ever take it over: remove it as a user would have to, and go on.
          stats.emptyLocks++;
          rmSync(lockFile);
        } else expect(held).toBe(`${r.pid}\n`);
      }
      const packs = readdirSync(join(store, 'packs')).filter((f) => f.endsWith('.pack')).sort();
      const listed = JSON.parse(readFileSync(join(store, 'packs.json'), 'utf8')).packs as string[];
      const listStale = JSON.stringify(listed) !== JSON.stringify(packs);
      if (listStale) stats.packListStale[op] = (stats.packListStale[op] ?? 0) + 1;

      // ---- a fresh library view: fsck, then old-or-new for what the process touched --------
      await withStore(async (s) => {
        const report = await s.fsck();
        expect(report.problems, `fsck after ${argv.join(' ')} killed at ${delay.toFixed(0)} ms`).toEqual([]);
        const refs = await s.backend.readRefs();
        if (listStale) {
          // Observed, not asserted (see the report): does a reader going by packs.json miss a blob the refs reach?
          const reachable: Set<string> = await (s as any).reachable([]);
          const listedBlobs = new Set(listed.filter((x) => packs.includes(x)).flatMap((x) => packDigests(join(store, 'packs', x))));
          if ([...reachable].some((d) => !listedBlobs.has(d))) stats.packListBroken[op] = (stats.packListBroken[op] ?? 0) + 1;
        }

        if (op === 'cp') {
          const box = await s.openBox('pb');
          const now = sha(box.fs.readFile('/big'));
          expect([bigSha, nextBig]).toContain(now);
          if (now === nextBig && r.killed) stats.newState.cp++;
          bigSha = now;
        } else if (op === 'commit') {
          const tag = refs.tags[`t:${i}`];
          const rec = refs.boxes.cb!;
          if (!tag) {
            // Old state: the box untouched, still on its image with its upper.
            expect({ image: rec.image, upper: rec.upper }).toEqual({ image: before!.rec.image, upper: before!.rec.upper });
            sameView(await boxView(s, 'cb'), before!.view);
          } else {
            // New state: a child of the old image whose merged view is the box's view before; the box on it, upper empty.
            if (r.killed) stats.newState.commit++;
            expect((await s.manifest(tag)).parent).toBe(before!.rec.image);
            expect({ image: rec.image, upper: rec.upper }).toEqual({ image: tag, upper: null });
            sameView(await imageView(s, `t:${i}`), before!.view);
            sameView(await boxView(s, 'cb'), before!.view);
          }
        } else if (op === 'import') {
          if (refs.tags[`x:${i}`]) {
            if (r.killed) stats.newState.import++;
            const v = await imageView(s, `x:${i}`);
            const files = new Map([...v].filter(([, d]) => d.startsWith('file')).map(([p, d]) => [p, d.split(' ')[2]!]));
            expect(files).toEqual(expectImport);
          }
        } else {
          // Whatever gc got done, every tag and box reads in full, as before.
          const now = await everything(s);
          expect([...now.keys()]).toEqual([...all!.keys()]);
          for (const [k, v] of all!) sameView(now.get(k)!, v);
        }
        // The other boxes are whole too (pb's file is always one of the copies made).
        if (op !== 'cp') expect(sha((await s.openBox('pb')).fs.readFile('/big'))).toBe(bigSha);

        // A locked call right after the kill: a stale lock must not block it. Drops the import's tag so its 1 MB is garbage for gc.
        const t = performance.now();
        if (op === 'import' && refs.tags[`x:${i}`]) await within(TAKEOVER_MS, 'image rm', s.removeImage(`x:${i}`));
        else await within(TAKEOVER_MS, 'image tag', s.tag('base', 'probe:latest'));
        if (staleLock) stats.maxTakeoverMs = Math.max(stats.maxTakeoverMs, performance.now() - t);
        expect(existsSync(lockFile)).toBe(false);
        // That locked call cleaned the dead writer's temp files.
        expect(readdirSync(join(store, 'tmp'))).toEqual([]);
      });

      // Now and then the CLI's own fsck, as a user would run it.
      if (i % 20 === 19) {
        const f = await lb(store, 'fsck');
        expect(f.code, f.stdout + f.stderr).toBe(0);
        expect(f.stdout).toMatch(/^ok: \d+ blobs verified/m);
        stats.cliFsck++;
      }
      n++;
    }

    // ---- at the end: the CLI agrees, and a last gc leaves a sound, small store ----------
    expect((await lb(store, 'gc')).code).toBe(0);
    const f = await lb(store, 'fsck');
    expect(f.code, f.stdout + f.stderr).toBe(0);
    expect(readdirSync(join(store, 'tmp'))).toEqual([]);
    const total = performance.now() - t0;
    console.log(`crash test: ${n} runs in ${(total / 1000).toFixed(1)} s; measured ms ${JSON.stringify(Object.fromEntries(Object.entries(stats.durations).map(([k, v]) => [k, Math.round(v)])))}; killed ${JSON.stringify(stats.kills)}; ran to the end ${JSON.stringify(stats.completed)}; killed but new state ${JSON.stringify(stats.newState)}; stale locks ${stats.staleLocks} (of them empty, the known bug: ${stats.emptyLocks}; max takeover ${stats.maxTakeoverMs.toFixed(0)} ms); kills leaving tmp files ${stats.leftoverTmp} (max ${stats.maxTmp}); packs.json out of date after kills ${JSON.stringify(stats.packListStale)}, missing a reachable blob after ${JSON.stringify(stats.packListBroken)}; CLI fsck runs ${stats.cliFsck + 1}`);
    expect(n).toBe(ITERATIONS);
    // Enough real kills of every kind that the test means something.
    for (const op of OPS) expect(stats.kills[op], op).toBeGreaterThanOrEqual(15);
  }, 400_000);

  // KNOWN BUG, runtime/node/dir-backend.ts acquireLockFile: the lock is made by writeFileSync(file, pid, { flag: 'wx' }),
  // i.e. open(O_CREAT|O_EXCL) then write(). A writer killed between the two leaves an empty lock file; parseInt('') is NaN,
  // so it is never judged stale and every later command waits the 60 s LOCK_TIMEOUT_MS and fails ("locked by process ?").
  it('an empty lock file left by a writer killed before it wrote its pid does not block the next command', async () => {
    writeFileSync(join(store, 'lock'), '');
    try {
      const r = await runAndKill(['gc'], TAKEOVER_MS);
      expect(r.killed, `gc still waiting on the empty lock after ${TAKEOVER_MS / 1000} s`).toBe(false);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      rmSync(join(store, 'lock'), { force: true });
    }
  }, 60_000);
});
