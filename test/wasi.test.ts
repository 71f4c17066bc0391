import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostFs, type Mount, runModule } from '../runtime/node/index.js';
import { memoryStore } from '../src/index.js';
// @ts-expect-error plain JS helper without types
import { FIXED_ENV, runNodeWasi } from './wasi/run-node-wasi.mjs';
// @ts-expect-error plain JS helper without types
import { runWasmer } from './wasi/run-wasmer.mjs';

/**
 * Differential conformance: every C program of test/wasi runs under layerbox
 * (over an image, and over a host directory mount) and under node:wasi on a
 * real directory. Each program checks itself (`summary: N checks, 0 failed`);
 * in addition every check node:wasi passes must give layerbox the very same
 * line. Lines node:wasi marks `tolerated` are its known bugs (listed in
 * test/wasi/README.md); PEER_BUGS are the lines where node:wasi "passes" with
 * a result that differs from Linux and from layerbox.
 */
const PROGRAMS = ['files', 'dirs', 'readdir', 'rename', 'symlinks', 'links', 'stat', 'seek', 'poll', 'clocks', 'errors', 'args_env', 'exit'];

const PEER_BUGS: Record<string, { line: RegExp; why: string }[]> = {
  errors: [
    { line: /^read on a dir fd: /, why: 'node:wasi answers EBADF; Linux (and layerbox) answer EISDIR' },
    { line: /^symlink escape (\.\.\/|absolute): /, why: 'node:wasi refuses to create symlinks whose target leaves the preopen; layerbox stores them as written and confines their resolution to the root (DESIGN: symlinks)' },
  ],
  poll: [{ line: /^poll: .* woke \d+ us early$/, why: 'node:wasi wakes sleeps up to ~1 ms early (an observation line it prints only then)' }],
};

/** Host directory mounts go through Node's fs API, which sets file times as double seconds (sub-microsecond digits are lost). */
const HOSTDIR_LIMITS: Record<string, { line: RegExp; why: string }[]> = {
  stat: [{ line: /^UTIME_OMIT keeps atime: /, why: "Node's fs cannot omit one time: the other is rewritten at microsecond precision" }],
};

const env = Object.entries(FIXED_ENV as Record<string, string>).map(([k, v]) => `${k}=${v}`);
const wasmOf = (name: string) => readFileSync(join('test/wasi/build', `${name}.wasm`));
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-wasi-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function layerbox(name: string, where: 'image' | 'hostdir', extra: string[] = []) {
  let mount: Mount;
  if (where === 'image') {
    const store = memoryStore();
    await store.importLayer(async (b) => b.addDir('/sandbox', { mode: 0o755 }), { tag: 'base' });
    const box = await store.createBox('b', { image: 'base' });
    mount = { guest: '/sandbox', fs: box.fs, path: '/sandbox' };
  } else {
    mount = { guest: '/sandbox', fs: new HostFs(await mkdtemp(join(tmp, `${name}-`))) };
  }
  const r = runModule(await WebAssembly.compile(wasmOf(name)), [mount], { args: [name, '/sandbox', ...extra], env });
  return { stdout: new TextDecoder().decode(r.stdout), stderr: new TextDecoder().decode(r.stderr), exitCode: r.exitCode, trap: r.trap };
}

const checks = (out: string) => out.split('\n').filter((l) => l.includes(': '));

describe.each(PROGRAMS.filter((p) => p !== 'exit'))('%s', (name) => {
  let peer: { stdout: string; exitCode: number };
  beforeAll(async () => {
    peer = await runNodeWasi(join('test/wasi/build', `${name}.wasm`));
  });

  for (const where of ['image', 'hostdir'] as const) {
    it(`passes its own checks under layerbox (${where}) and agrees with node:wasi`, async () => {
      const r = await layerbox(name, where);
      expect(r.stdout).toMatch(/summary: \d+ checks, \d+ failed/);
      // node:wasi itself may miss a timing check under load (it wakes sleeps early); its FAIL lines are not compared.
      expect(peer.stdout).toMatch(/summary: \d+ checks/);
      const ours = new Set(checks(r.stdout));
      const bugs = PEER_BUGS[name] ?? [];
      const limits = where === 'hostdir' ? HOSTDIR_LIMITS[name] ?? [] : [];
      const own = checks(r.stdout).filter((l) => /: FAIL\b/.test(l) && !limits.some((b) => b.line.test(l)));
      expect(own, r.stdout).toEqual([]);
      // Only check lines (ok/FAIL) are compared; other lines are observations that may differ.
      const missing = checks(peer.stdout).filter((l) => /: ok( \(.*\))?$/.test(l) && !ours.has(l) && !bugs.some((b) => b.line.test(l)) && !limits.some((b) => b.line.test(l)));
      expect(missing, `node:wasi lines layerbox did not print:\n${missing.join('\n')}\n--- layerbox:\n${r.stdout}`).toEqual([]);
    });
  }
});

/**
 * @wasmer/wasi 1.2.2 as a second reference, where it can run a program at
 * all: its MemFS panics (`unreachable` inside its own Rust code) on most file
 * programs, and where it completes it fails some of its own checks (times are
 * 0, no symlinks). Every check it does pass must give layerbox the same line.
 */
describe('against @wasmer/wasi where it runs', () => {
  it.each(PROGRAMS.filter((p) => p !== 'exit'))('%s', async (name) => {
    const peer = await runWasmer(join('test/wasi/build', `${name}.wasm`));
    if (!/summary: \d+ checks/.test(peer.stdout)) {
      expect(peer.error ?? '', `wasmer output:\n${peer.stdout}`).toMatch(/unreachable/);
      return;
    }
    const ours = new Set(checks((await layerbox(name, 'image')).stdout));
    const bugs = PEER_BUGS[name] ?? [];
    const missing = checks(peer.stdout).filter((l) => /: ok( \(.*\))?$/.test(l) && !ours.has(l) && !bugs.some((b) => b.line.test(l)));
    expect(missing).toEqual([]);
  });
});

describe('exit codes and traps', () => {
  it.each([[[], 0], [['3'], 3], [['return:7'], 7], [['_exit:9'], 9], [['255'], 255], [['trap'], 134]] as const)('exit %j gives %i, like node:wasi', async (args, code) => {
    const ours = await layerbox('exit', 'image', [...args]);
    const peer = await runNodeWasi('test/wasi/build/exit.wasm', [...args]);
    expect(ours.exitCode).toBe(code);
    if (code === 134) expect(peer.trap).toBeTruthy();
    else expect(peer.exitCode).toBe(code);
    expect(ours.stdout).toBe(peer.stdout);
    if (code === 134) expect(ours.stderr).toMatch(/trap: unreachable/);
  });
});
