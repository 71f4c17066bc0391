import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { DIR_RIGHTS, FILE_RIGHTS } from '../src/wasi/defs.js';
import { DirFd, Errno, WasiHost, memoryStore, openStore } from '../runtime/node/index.js';

const exec = promisify(execFile);
const CLI = resolve('dist/cli.js');
const GUEST = resolve('test/wasi/build/guest.wasm');
/** The write-path benchmark's guest (bench/writes.c): `stream PATH MIB` writes MIB MiB in 64 KiB writes. */
const WRITES = resolve('bench/writes.wasm');
let tmp: string;
let store: string;

/** Runs the built CLI; stdin text optional. */
function lb(argv: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '', SECRET_HOST_VAR: 'leak' } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

beforeAll(async () => {
  if (!existsSync(CLI) || !existsSync(resolve('dist/worker.js'))) await exec('node', ['esbuild.config.mjs']);
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-run-'));
  store = join(tmp, 'store');
  await mkdir(join(tmp, 'tree/etc'), { recursive: true });
  await writeFile(join(tmp, 'tree/etc/secret'), 'box secret\n');
  await writeFile(join(tmp, 'tree/etc/motd'), 'hello from the image\n');
  expect((await lb(['image', 'import', join(tmp, 'tree'), '--tag', 'base'])).code).toBe(0);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('layerbox run (built CLI)', () => {
  it('--image writes only to a throw-away upper', async () => {
    const r = await lb(['run', '--image', 'base', GUEST, '--', 'write', '/etc/motd', 'changed']);
    expect(r).toMatchObject({ code: 0, stdout: 'wrote /etc/motd\n' });
    expect(JSON.parse((await lb(['box', 'ls', '--json'])).stdout)).toEqual([]);
    expect((await lb(['box', 'create', 'check', '--image', 'base'])).code).toBe(0);
    expect((await lb(['cat', 'check:/etc/motd'])).stdout).toBe('hello from the image\n');
  });

  it('--box keeps the writes: diff shows them, commit keeps them', async () => {
    expect((await lb(['box', 'create', 'b1', '--image', 'base'])).code).toBe(0);
    const r = await lb(['run', '--box', 'b1', GUEST, '--', 'write', '/notes.txt', 'from the guest']);
    expect(r.code).toBe(0);
    expect((await lb(['cat', 'b1:/notes.txt'])).stdout).toBe('from the guest');
    expect((await lb(['diff', 'b1'])).stdout).toBe('A /notes.txt\n');
    const c = await lb(['commit', 'b1', '--tag', 'base:v2']);
    expect(c.code).toBe(0);
    expect((await lb(['run', '--image', 'base:v2', GUEST, '--', 'cat', '/notes.txt'])).stdout).toBe('from the guest');
    expect((await lb(['run', '--image', 'base', GUEST, '--', 'cat', '/notes.txt'])).code).toBe(1);
    // A program stored in a box runs too.
    expect((await lb(['cp', GUEST, 'b1:/guest.wasm'])).code).toBe(0);
    expect((await lb(['run', '--box', 'b1', 'b1:/guest.wasm', '--', 'cat', '/etc/motd'])).stdout).toBe('hello from the image\n');
  });

  it('gives the guest only the image environment and --env, and streams stdin', async () => {
    const r = await lb(['run', '--image', 'base', '--env', 'A=1', '--env', 'B=two words', GUEST, '--', 'env', 'A', 'B', 'PATH', 'HOME', 'SECRET_HOST_VAR']);
    expect(r.stdout).toBe('A=1\nB=two words\nPATH unset\nHOME unset\nSECRET_HOST_VAR unset\n');
    const s = await lb(['run', '--image', 'base', GUEST, '--', 'stdin'], 'line one\nline two\n');
    expect(s.stdout).toBe('line one\nline two\n');
  });

  it('exits with the guest code; a trap exits 134 with the reason', async () => {
    expect((await lb(['run', '--image', 'base', GUEST, '--', 'exit', '42'])).code).toBe(42);
    const t = await lb(['run', '--image', 'base', GUEST, '--', 'trap']);
    expect(t.code).toBe(134);
    expect(t.stderr).toMatch(/^layerbox: guest trap: unreachable/m);
  });

  it('--timeout stops a guest that never returns; the box and the store stay healthy', async () => {
    const r = await lb(['run', '--box', 'b1', '--timeout', '2', GUEST, '--', 'loop']);
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/guest stopped: no exit after 2 s \(timeout\)/);
    expect((await lb(['fsck'])).code).toBe(0);
    expect((await lb(['run', '--box', 'b1', GUEST, '--', 'cat', '/notes.txt'])).stdout).toBe('from the guest');
  });

  it('keeps what the guest fsynced even when a timeout stops it; unsynced writes are lost', async () => {
    // A run is judged only once its guest said "written" (its write, and for keep its fsync, done before the timeout);
    // a host too busy to get there within the timeout gets a run with a longer one, in a fresh box.
    const untilWritten = async (make: () => Promise<string>, what: string) => {
      for (let s = 1; ; s *= 2) {
        const box = await make();
        const r = await lb(['run', '--box', box, '--timeout', String(s), GUEST, '--', ...what.split(' ')]);
        expect(r.code, r.stderr).toBe(124);
        if (r.stdout === 'written\n') return box;
        expect(r.stdout, 'a run stopped before it wrote says nothing').toBe('');
        expect(s, `${what}: the guest never got its write done`).toBeLessThan(64);
      }
    };
    let n = 0;
    const fresh = async () => {
      const name = `dur${n++}`;
      expect((await lb(['box', 'create', name, '--image', 'base'])).code).toBe(0);
      return name;
    };
    const box = await untilWritten(fresh, 'keep /kept.txt durable');
    await untilWritten(async () => box, 'lose /lost.txt volatile');
    expect((await lb(['diff', box])).stdout).toBe('A /kept.txt\n');
    expect((await lb(['cat', `${box}:/kept.txt`])).stdout).toBe('durable');
  });

  it('leaves a small journal in place, durable, and folds it when the box is forked, exported or committed', async () => {
    const journal = join(store, 'journals', 'lazy.jnl');
    expect((await lb(['box', 'create', 'lazy', '--image', 'base'])).code).toBe(0);
    expect((await lb(['run', '--box', 'lazy', GUEST, '--', 'write', '/one.txt', 'first'])).code).toBe(0);
    // The run's changes stay in the journal: the next run, cat and diff read them from there.
    expect(existsSync(journal)).toBe(true);
    expect((await lb(['run', '--box', 'lazy', GUEST, '--', 'write', '/two.txt', 'second'])).code).toBe(0);
    expect((await lb(['run', '--box', 'lazy', GUEST, '--', 'cat', '/one.txt'])).stdout).toBe('first');
    expect((await lb(['diff', 'lazy'])).stdout).toBe('A /one.txt\nA /two.txt\n');
    expect((await lb(['fsck'])).code).toBe(0);
    expect((await lb(['gc'])).code).toBe(0);
    expect((await lb(['cat', 'lazy:/two.txt'])).stdout).toBe('second');
    // A fork folds it first: both boxes then stand on the same stored upper.
    expect((await lb(['box', 'fork', 'lazy', 'lazy2'])).code).toBe(0);
    expect(existsSync(journal)).toBe(false);
    expect((await lb(['cat', 'lazy2:/one.txt'])).stdout).toBe('first');
    expect((await lb(['run', '--box', 'lazy', GUEST, '--', 'write', '/three.txt', 'third'])).code).toBe(0);
    expect(existsSync(journal)).toBe(true);
    expect((await lb(['export', 'base', '--box', 'lazy', '-o', join(tmp, 'lazy.lbx')])).code).toBe(0);
    expect(existsSync(journal)).toBe(false);
    expect((await lb(['run', '--box', 'lazy', GUEST, '--', 'write', '/four.txt', 'fourth'])).code).toBe(0);
    expect(existsSync(journal)).toBe(true);
    expect((await lb(['commit', 'lazy', '--tag', 'lazy:v1'])).code).toBe(0);
    expect(existsSync(journal)).toBe(false);
    expect((await lb(['run', '--image', 'lazy:v1', GUEST, '--', 'cat', '/three.txt'])).stdout).toBe('third');
    expect((await lb(['fsck'])).code).toBe(0);
  });

  it('folds a journal that has grown past 32 MiB at the end of the run', async () => {
    expect((await lb(['box', 'create', 'big', '--image', 'base'])).code).toBe(0);
    const r = await lb(['run', '--box', 'big', WRITES, '--', 'stream', '/big', '40']);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: `stream 640 ${40 << 20}\n` });
    expect(existsSync(join(store, 'journals', 'big.jnl'))).toBe(false);
    expect((await lb(['ls', 'big:/'])).stdout).toMatch(/big/);
  });

  it('refuses bad arguments with one clear line', async () => {
    expect((await lb(['run', GUEST])).stderr).toMatch(/run needs one of --box BOX or --image IMAGE/);
    expect((await lb(['run', '--image', 'nope', GUEST])).stderr).toBe('layerbox: no such image: nope\n');
    expect((await lb(['run', '--image', 'base', join(tmp, 'missing.wasm')])).stderr).toMatch(/no such program/);
    expect((await lb(['run', '--image', 'base', '--dir', 'relative', GUEST])).code).toBe(2);
  });
});

// The guest escape suite is test/escape.test.ts.
describe('guest paths', () => {
  it('refuses NUL bytes in guest paths', async () => {
    const s = memoryStore();
    await s.importLayer(async (b) => b.addDir('/d'), { tag: 'x' });
    const box = await s.createBox('b', { image: 'x' });
    const ctx = { fs: box.fs, root: '/', now: () => 0n, dev: 1n };
    const host = new WasiHost({ fds: [undefined, undefined, undefined, new DirFd(ctx, '/', DIR_RIGHTS, DIR_RIGHTS | FILE_RIGHTS, '/')] });
    const memory = { buffer: new ArrayBuffer(65536) };
    host.initialize({ exports: { memory } });
    const path = new TextEncoder().encode('d\0/../../etc');
    new Uint8Array(memory.buffer).set(path, 100);
    const open = host.wasiImport.path_open!(3, 0, 100, path.length, 0, 0n, 0n, 0, 200);
    expect(open).toBe(Errno.INVAL);
    expect(host.wasiImport.path_create_directory!(3, 100, path.length)).toBe(Errno.INVAL);
    expect(box.fs.readdir('/').map((e) => e.name)).toEqual(['d']);
  });
});

describe('box.run in the library', () => {
  it('runs over a directory store in a worker that a timeout can stop', async () => {
    const s = await openStore(join(tmp, 'libstore'));
    await s.importDirectory(join(tmp, 'tree'), { tag: 'base' });
    const box = await s.createBox('lib', { image: 'base' });
    const wasm = new Uint8Array(readFileSync(GUEST));
    const ok = await box.run(wasm, { args: ['guest', 'write', '/lib.txt', 'x'] });
    expect(ok.exitCode).toBe(0);
    expect(box.fs.exists('/lib.txt')).toBe(true);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 50);
    const r = await box.run(wasm, { args: ['guest', 'loop'], timeoutMs: 1000 });
    clearInterval(timer);
    expect(r.exitCode).toBe(124);
    // The host's event loop ran while the guest spun (any tick proves it; how many depends on the host's load).
    expect(ticks).toBeGreaterThan(0);
    expect(box.diff()).toEqual([{ kind: 'A', path: '/lib.txt' }]);
    await s.backend.close();
  });
});

describe('a box in use', () => {
  it('is refused to another process while a guest runs in it, and free again afterwards', async () => {
    expect((await lb(['box', 'create', 'busy', '--image', 'base'])).code).toBe(0);
    // The guest echoes stdin until it ends: it holds the box until the test has made its assertions, however slow the host.
    const child = spawn(process.execPath, [CLI, '--store', store, 'run', '--box', 'busy', GUEST, '--', 'stdin'], { env: { ...process.env, LAYERBOX_STORE: '' } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let ended = false;
    const running = new Promise<number | null>((done) => child.on('close', (code) => ((ended = true), done(code))));
    onTestFinished(() => {
      if (!ended) child.kill('SIGKILL');
    });
    // The run holds the box once its lease file is there.
    const lease = join(store, 'leases', 'busy');
    while (!existsSync(lease)) {
      if (ended) throw new Error(`the run ended before it held the box: ${stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await writeFile(join(tmp, 'x.txt'), 'x');
    const cp = await lb(['cp', join(tmp, 'x.txt'), 'busy:/x.txt']);
    expect(cp.code).toBe(1);
    expect(cp.stderr).toMatch(/^layerbox: box busy is in use by process \d+\n$/);
    expect((await lb(['commit', 'busy', '--tag', 'busy:1'])).stderr).toMatch(/box busy is in use/);
    // Reading is fine meanwhile.
    expect((await lb(['diff', 'busy'])).code).toBe(0);
    expect(ended, 'the run still holds the box').toBe(false);
    child.stdin.end('done\n');
    expect(await running, stderr).toBe(0);
    expect(stdout).toBe('done\n');
    expect((await lb(['cp', join(tmp, 'x.txt'), 'busy:/x.txt'])).code).toBe(0);
  });
});
