/**
 * The host mount race: while one party swaps a directory of a shared mount
 * for a symlink out of it, a guest goes through that directory thousands of
 * times (open, create, rename, link, stat, set times, mkdir, readdir,
 * symlink, readlink, unlink). Whichever state it meets, every call either
 * stays in the mount or fails with a WASI errno: the canary next to the
 * mount ends byte for byte (and time for time) as it began, its secret is
 * never read, and no host path or host error text reaches the guest.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Errno, errnoName, openStore, runInWorker } from '../../runtime/node/index.js';

const SWAP = resolve('test/attack/guests/build/mount_swap.wasm');
const ATTACK = resolve('test/attack/guests/build/mount_attack.wasm');
const SECRET = 'canary-secret-7f3a: no guest may read this';
const SECRET_NAME = 'canary-name-91c4';
const ROUNDS = 3000;

let tmp: string;
let store: string;

/** Every entry under `root`: type, mode, mtime and content hash (a read-only look: no atime is asserted). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p, { bigint: true });
      const what = st.isSymbolicLink() ? `link ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : `file ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
      out[relative(root, p)] = `${what} ${st.mode.toString(8)} ${st.mtimeNs} ${st.nlink}`;
      if (st.isDirectory()) walk(p);
    }
  };
  out['.'] = `${lstatSync(root, { bigint: true }).mtimeNs}`;
  walk(root);
  return out;
}

const fdCount = () => readdirSync('/proc/self/fd').length;

/** A fresh mount (x/ with a harmless file) and a canary next to it (a secret file, a secret name, a directory). */
async function scene(name: string): Promise<{ mount: string; outside: string }> {
  const root = join(tmp, name);
  const mount = join(root, 'mount');
  const outside = join(root, 'outside');
  await mkdir(join(mount, 'x'), { recursive: true });
  await writeFile(join(mount, 'x/secret'), 'inside\n');
  await mkdir(join(outside, 'sub'), { recursive: true });
  await writeFile(join(outside, 'secret'), SECRET + '\n');
  await writeFile(join(outside, 'sub/secret'), SECRET + '\n');
  await writeFile(join(outside, SECRET_NAME), SECRET + '\n');
  return { mount, outside };
}

const run = (program: string, args: string[], mount: string) =>
  runInWorker({ store, image: 'base', program, args: ['main', ...args], env: [], dirs: [{ host: mount, guest: '/m' }], stdio: 'pipe' }, { timeoutMs: 300_000 });

/** An attacker's run; however it ends (a failing host would kill it), its done file stops the swapper. */
const attack = (mount: string, id: string) =>
  run(ATTACK, ['/m', String(ROUNDS), id], mount).finally(() => writeFile(join(mount, `done-${id}`), ''));

/** The errnos a guest printed ("errno N: count"), each checked to be a WASI errno. */
function errnos(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stdout.matchAll(/^errno (\d+): (\d+)$/gm)) {
    const n = Number(m[1]);
    expect(Object.values(Errno), `errno ${n} is a WASI errno`).toContain(n);
    expect(n).not.toBe(Errno.SUCCESS);
    out[errnoName(n)] = Number(m[2]);
  }
  return out;
}

/** What a guest saw: nothing from outside, no host path, no host error text. */
function clean(r: { exitCode: number; stdout: Uint8Array; stderr: Uint8Array; trap?: string }, outside: string): string {
  const stdout = new TextDecoder().decode(r.stdout);
  const stderr = new TextDecoder().decode(r.stderr);
  expect(r.trap).toBeUndefined();
  expect(stderr).toBe('');
  expect(r.exitCode).toBe(0);
  for (const leak of [SECRET, SECRET_NAME, tmp, outside, 'ENOENT:', 'Error']) expect(stdout).not.toContain(leak);
  return stdout;
}

/** The mount ends with x a directory again, its file intact, and only names the guests may make (a race can leave some behind). */
function inMount(mount: string, top: string[]): void {
  expect(readdirSync(mount).sort()).toEqual(top);
  expect(readFileSync(join(mount, 'x/secret'), 'utf8')).toBe('inside\n');
  for (const name of readdirSync(join(mount, 'x'))) expect(name).toMatch(/^(secret|(new|ren|lnk|d|sl)-[12]-\d+)$/);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-mount-race-'));
  store = join(tmp, 'store');
  await mkdir(join(tmp, 'empty'));
  const s = await openStore(store);
  await s.importDirectory(join(tmp, 'empty'), { tag: 'base' });
  await s.backend.close();
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

it('a guest swapping x for a climbing symlink while another goes through x: nothing outside is read or changed', async () => {
  const { mount, outside } = await scene('guests');
  const before = snapshot(outside);
  const fds = fdCount();
  // Both start at once; the attacker begins when the swapper has made `started`.
  const [swap, attacker] = await Promise.all([run(SWAP, ['/m', '../outside', '1'], mount), attack(mount, '1')]);
  const swapOut = clean(swap, outside);
  const out = clean(attacker, outside);
  expect(Number(/^rounds (\d+)$/m.exec(swapOut)?.[1])).toBeGreaterThan(0);
  // The attacker met both states: calls through the directory worked, calls through the symlink failed.
  expect(out).toContain('read: inside\n');
  expect(Number(/^ok (\d+)$/m.exec(out)?.[1])).toBeGreaterThan(0);
  expect(Object.keys(errnos(out)).length).toBeGreaterThan(0);
  errnos(swapOut);
  expect(snapshot(outside)).toEqual(before);
  inMount(mount, ['done-1', 'started', 'x']);
  expect(fdCount()).toBe(fds);
}, 600_000);

it('a host process swapping x for an absolute symlink while two guests go through x: nothing outside is read or changed', async () => {
  const { mount, outside } = await scene('host');
  const before = snapshot(outside);
  const fds = fdCount();
  // The host swapper: renames only, as fast as it can, until both guests are done (or a fixed count).
  const script = `
    const fs = require('node:fs'), [m, target] = process.argv.slice(1), p = (n) => m + '/' + n;
    fs.symlinkSync(target, p('xl'));
    fs.writeFileSync(p('started'), '');
    let r = 0;
    const tryRename = (a, b) => { try { fs.renameSync(p(a), p(b)); } catch {} };
    for (; r < 20000000; r++) {
      tryRename('x', 'xd'); tryRename('xl', 'x');
      if (fs.existsSync(p('done-1')) && fs.existsSync(p('done-2'))) break;
      tryRename('x', 'xl'); tryRename('xd', 'x');
    }
    if (fs.existsSync(p('xd'))) { tryRename('x', 'xl'); tryRename('xd', 'x'); }
    fs.unlinkSync(p('xl'));
    console.log('rounds ' + r);`;
  const swapper = spawn(process.execPath, ['-e', script, mount, outside], { stdio: ['ignore', 'pipe', 'inherit'] });
  let swapOut = '';
  swapper.stdout.on('data', (b: Buffer) => (swapOut += b.toString()));
  const swapped = new Promise<number | null>((res) => swapper.on('exit', res));
  const [a, b] = await Promise.all([attack(mount, '1'), attack(mount, '2')]);
  expect(await swapped).toBe(0);
  expect(Number(/^rounds (\d+)$/m.exec(swapOut)?.[1])).toBeGreaterThan(0);
  for (const r of [a, b]) {
    const out = clean(r, outside);
    expect(out).toContain('read: inside\n');
    expect(Object.keys(errnos(out)).length).toBeGreaterThan(0);
  }
  expect(snapshot(outside)).toEqual(before);
  inMount(mount, ['done-1', 'done-2', 'started', 'x']);
  expect(fdCount()).toBe(fds);
}, 600_000);
