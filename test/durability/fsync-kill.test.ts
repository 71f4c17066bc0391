// Point 5 of "a durable, bounded write path": fd_sync means durable in every
// way of running a guest. A guest writes a file, fsyncs it, writes another
// without fsync, prints "synced" and blocks; the test kills its process with
// SIGKILL as soon as "synced" arrives, then opens the store: the synced file
// holds every byte, the unsynced one may be lost, and the store is sound.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../runtime/node/index.js';
import { cli } from '../attack/cli-run.js';
import { guestBytes } from './guest-bytes.js';

const CLI = resolve('dist/cli.js');
const SYNC = resolve('test/durability/guests/build/sync.wasm');
const SCRIPT = resolve('test/durability/run-guest.mjs');
const KEPT = 200_000; // more than one chunk, not a whole number of them
const LOST = 4096;

const stream = guestBytes;
const all = stream(KEPT + LOST);
const kept = all.subarray(0, KEPT);
const lost = all.subarray(KEPT);

let tmp: string;
let store: string;

beforeAll(async () => {
  if (!existsSync(CLI) || !existsSync(resolve('dist/worker.js')) || !existsSync(resolve('dist/node.js'))) throw new Error('dist/ is missing: run npm run build first');
  tmp = mkdtempSync(join(tmpdir(), 'lb-fsync-kill-'));
  store = join(tmp, 'store');
  mkdirSync(join(tmp, 'tree/etc'), { recursive: true });
  writeFileSync(join(tmp, 'tree/etc/motd'), 'hello from the image\n');
  const r = await cli(store, 'image', 'import', join(tmp, 'tree'), '--tag', 'base');
  expect(r.code, r.stderr).toBe(0);
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Starts `cmd`, waits for "synced" on its stdout (or its exit, which fails the
 * test), then kills it with SIGKILL and waits until it is gone.
 */
async function killAfterSync(cmd: string[]): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LAYERBOX_STORE: '' } });
  let stdout = '', stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const gone = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  const synced = await new Promise<boolean>((done) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('synced\n')) done(true);
    });
    child.on('exit', () => done(false));
  });
  // stdin stays open: the guest blocks reading it until the kill.
  if (synced) child.kill('SIGKILL');
  const code = await gone;
  expect(synced, `the guest never said "synced" (exit ${code}); stdout: ${stdout}; stderr: ${stderr}`).toBe(true);
  return { stdout, stderr };
}

async function expectDurable(box: string): Promise<void> {
  const s = await openStore(store);
  try {
    const fsck = await s.fsck();
    expect(fsck.problems, 'fsck after the kill').toEqual([]);
    const b = await s.openBox(box);
    const got = b.fs.exists('/kept.bin') ? Buffer.from(await b.readFile('/kept.bin')) : null;
    expect(got, '/kept.bin, synced before the kill, is in the store').not.toBeNull();
    expect(got!.length, 'size of /kept.bin after the kill').toBe(KEPT);
    expect(got!.equals(kept), 'bytes of /kept.bin after the kill').toBe(true);
    // Not synced: it may be lost, but never half-readable garbage.
    if (b.fs.exists('/lost.bin')) {
      const l = Buffer.from(await b.readFile('/lost.bin'));
      expect(l.equals(lost.subarray(0, l.length)), '/lost.bin, if kept, is a prefix of what was written').toBe(true);
    }
    expect(Buffer.from(await b.readFile('/etc/motd')).toString()).toBe('hello from the image\n');
  } finally {
    await s.backend.close();
  }
  // The user's view agrees: cat works on the box.
  const c = await cli(store, 'cat', `${box}:/kept.bin`);
  expect(c.code, `cat ${box}:/kept.bin: ${c.stderr}`).toBe(0);
  const m = await cli(store, 'cat', `${box}:/etc/motd`);
  expect(m.stdout).toBe('hello from the image\n');
}

const GUEST_ARGS = ['sync', 'hold', '/kept.bin', String(KEPT), '/lost.bin'];

const modes: Array<{ name: string; cmd: (box: string, host: string) => string[] }> = [
  { name: 'layerbox run --box (CLI, the guest on its main thread)', cmd: (box) => [process.execPath, CLI, '--store', store, 'run', '--box', box, SYNC, '--', ...GUEST_ARGS.slice(1)] },
  { name: 'layerbox run --box --timeout (CLI, the guest in a worker)', cmd: (box) => [process.execPath, CLI, '--store', store, 'run', '--box', box, '--timeout', '600', SYNC, '--', ...GUEST_ARGS.slice(1)] },
  { name: 'layerbox run --box with a host mount (--dir)', cmd: (box, host) => [process.execPath, CLI, '--store', store, 'run', '--box', box, '--dir', `${host}::/data`, SYNC, '--', ...GUEST_ARGS.slice(1)] },
  { name: 'box.run(bytes) from a Node script', cmd: (box) => [process.execPath, SCRIPT, store, box, SYNC, 'bytes', '--', ...GUEST_ARGS] },
  { name: 'box.run(a compiled module) from a Node script (no worker runner)', cmd: (box) => [process.execPath, SCRIPT, store, box, SYNC, 'module', '--', ...GUEST_ARGS] },
  { name: 'box.run(bytes, { mounts }) from a Node script (a host mount)', cmd: (box, host) => [process.execPath, SCRIPT, store, box, SYNC, 'mount', host, '--', ...GUEST_ARGS] },
  { name: 'box.wasi() with the module driven by the script', cmd: (box) => [process.execPath, SCRIPT, store, box, SYNC, 'wasi', '--', ...GUEST_ARGS] },
];

describe('fd_sync is durable: SIGKILL right after the guest fsynced', () => {
  modes.forEach((m, i) =>
    it(m.name, async () => {
      const box = `k${i}`;
      const host = join(tmp, `host${i}`);
      mkdirSync(host);
      const c = await cli(store, 'box', 'create', box, '--image', 'base');
      expect(c.code, c.stderr).toBe(0);
      const r = await killAfterSync(m.cmd(box, host));
      expect(r.stdout).toBe('fsync: ok\nsynced\n');
      await expectDurable(box);
    }, 60_000),
  );
});
