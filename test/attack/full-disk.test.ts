// A full disk under the store: every command that writes fails with one line
// naming the failure and what it was doing, exit 1; once space is freed the
// store is sound (fsck clean) and holds exactly what it held before.
//
// As root (CI) the store is on a real 20 MiB tmpfs filled up with a filler
// file. Otherwise the host's writes are made to fail with ENOSPC by a
// preloaded stand-in for the disk (`--import`), which counts the bytes written
// under the store against the same free space.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fillDisk } from '../helpers.js';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTree } from '../fixtures.js';
import { type CliRun, cli, cliWith, expectOneLine } from './cli-run.js';

const root = process.getuid?.() === 0 && process.env.LAYERBOX_TEST_FAKE_DISK !== '1';
const GUEST = resolve('test/attack/guests/build/write-bytes.wasm');

let tmp: string;
/** The small disk (a tmpfs as root): the store and export outputs live on it. */
let disk: string;
let store: string;
let other: string;
let mounted = false;
let registry: ChildProcess | undefined;
let port = 0;
/** Free bytes the stand-in disk leaves (non-root only), and the error its writes fail with. */
let fakeFree: number | null = null;
let fakeCode = 'ENOSPC';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Runs the CLI on the store on the small disk. */
function lb(...argv: string[]): Promise<CliRun> {
  if (root || fakeFree === null) return cli(store, ...argv);
  return cliWith({ nodeArgs: ['--import', fakeDisk(disk, fakeFree, fakeCode)] }, store, ...argv);
}
async function ok(...argv: string[]): Promise<CliRun> {
  const r = await lb(...argv);
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

/** Leaves `free` bytes free on the disk: a filler file takes all the rest. */
function fill(free: number): void {
  if (!root) {
    fakeFree = free;
    return;
  }
  const filler = join(disk, 'filler');
  fillDisk(filler, free);
}

function unfill(): void {
  fakeFree = null;
  rmSync(join(disk, 'filler'), { force: true });
}

/**
 * A module for `node --import` that stands in for a full disk: writes to
 * files under `dir` succeed until `free` bytes are used, then fail with
 * ENOSPC, as the host's would.
 */
function fakeDisk(dir: string, free: number, code: string): string {
  const src = `import fs from 'node:fs'; import { resolve } from 'node:path'; import { syncBuiltinESMExports } from 'node:module';
const DIR = ${JSON.stringify(dir)}; let free = ${free}; const fds = new Set();
const nospc = () => Object.assign(new Error(${JSON.stringify(code)} + ': write failed'), { code: ${JSON.stringify(code)}, syscall: 'write' });
const take = (n) => { if (n > free) throw nospc(); free -= n; };
const under = (p) => resolve(String(p)).startsWith(DIR + '/');
const size = (d) => typeof d === 'string' ? Buffer.byteLength(d) : d.byteLength;
const { openSync, writeSync, writeFileSync, closeSync } = fs;
fs.openSync = (p, ...r) => { const fd = openSync(p, ...r); if (under(p)) fds.add(fd); return fd; };
fs.closeSync = (fd) => { fds.delete(fd); return closeSync(fd); };
fs.writeSync = (fd, b, ...r) => { if (fds.has(fd)) take(typeof r[1] === 'number' ? r[1] : size(b)); return writeSync(fd, b, ...r); };
fs.writeFileSync = (f, d, ...r) => { if (typeof f === 'number' ? fds.has(f) : under(f)) take(size(d)); return writeFileSync(f, d, ...r); };
const { open, writeFile } = fs.promises;
fs.promises.open = async (p, ...r) => { const fh = await open(p, ...r); if (under(p)) { const w = fh.write.bind(fh), wf = fh.writeFile.bind(fh);
  fh.write = (b, o, l, ...x) => { take(typeof l === 'number' ? l : size(b)); return w(b, o, l, ...x); };
  fh.writeFile = (d, ...x) => { take(size(d)); return wf(d, ...x); }; } return fh; };
fs.promises.writeFile = (f, d, ...r) => { if (under(f)) take(size(d)); return writeFile(f, d, ...r); };
syncBuiltinESMExports();`;
  return `data:text/javascript,${encodeURIComponent(src)}`;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/** What the store holds, as a user sees it. */
async function state(): Promise<unknown> {
  return {
    images: JSON.parse((await ok('image', 'ls', '--json')).stdout),
    boxes: JSON.parse((await ok('box', 'ls', '--json')).stdout),
    b1: sha((await ok('cat', 'b1:/big.bin')).stdout),
    b1diff: (await ok('diff', 'b1')).stdout,
    b2diff: (await ok('diff', 'b2')).stdout,
  };
}

let before: unknown;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lb-fulldisk-'));
  disk = join(tmp, 'disk');
  mkdirSync(disk);
  if (root) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', disk]);
    mounted = true;
  }
  store = join(disk, 'store');
  other = join(tmp, 'other');
  // What the commands under test bring in: a tree with 2 MiB of varied bytes, a 1 MiB file, a directory of 400 files.
  await makeTree(join(tmp, 'tree'));
  mkdirSync(join(tmp, 'big'));
  writeFileSync(join(tmp, 'big', 'data.bin'), randomBytes(2 << 20));
  writeFileSync(join(tmp, 'one.bin'), randomBytes(1 << 20));
  mkdirSync(join(tmp, 'many'));
  for (let i = 0; i < 400; i++) writeFileSync(join(tmp, 'many', `file-with-a-long-name-${i}.txt`), `${i}\n`);
  writeFileSync(join(tmp, 'b1-big.bin'), randomBytes(256 << 10));

  await ok('image', 'import', join(tmp, 'tree'), '--tag', 't:1');
  await ok('box', 'create', 'b1', '--image', 't:1');
  await ok('cp', join(tmp, 'b1-big.bin'), 'b1:/big.bin');
  await ok('box', 'create', 'b2', '--image', 't:1');
  await ok('cp', join(tmp, 'many'), 'b2:/many');

  // An image to pull, pushed from another store to a registry on 127.0.0.1.
  port = await freePort();
  const config = join(tmp, 'registry.yml');
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(tmp, 'registry')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  registry = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: 'ignore' });
  for (let i = 0; !(await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)); i++) {
    if (i > 100 || registry.exitCode !== null) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const argv of [['image', 'import', join(tmp, 'big'), '--tag', 'big:1'], ['push', 'big:1', `127.0.0.1:${port}/big:1`]]) {
    const r = await cli(other, ...argv);
    expect(r.code, r.stderr).toBe(0);
  }
  before = await state();
}, 120_000);

afterAll(() => {
  unfill();
  registry?.kill();
  if (mounted) execFileSync('umount', [disk]);
  rmSync(tmp, { recursive: true, force: true });
});

const KIB = 1024;
/** Each command, what its one line must say it was doing, and how much room it is left (0: none; 16 KiB: the lock fits, the data does not). */
const commands: Array<{ name: string; argv: () => string[]; doing: () => string; free: number[] }> = [
  { name: 'image import', argv: () => ['image', 'import', join(tmp, 'big'), '--tag', 't:2'], doing: () => `importing ${join(tmp, 'big')}`, free: [0, 16 * KIB] },
  { name: 'import (a bundle)', argv: () => ['import', join(tmp, 'other-export.lbx')], doing: () => `importing ${join(tmp, 'other-export.lbx')}`, free: [0, 16 * KIB] },
  { name: 'cp into a box', argv: () => ['cp', join(tmp, 'one.bin'), 'b1:/one.bin'], doing: () => 'copying into box b1', free: [0, 16 * KIB] },
  { name: 'run (the flush after it)', argv: () => ['run', '--box', 'b1', GUEST, '--', '/written.bin', '1024'], doing: () => `running ${GUEST} in box b1`, free: [0, 16 * KIB] },
  { name: 'commit', argv: () => ['commit', 'b2', '--tag', 't:3'], doing: () => 'committing b2', free: [0] },
  { name: 'export', argv: () => ['export', 't:1', '--box', 'b1', '-o', join(disk, 'out.lbx')], doing: () => `exporting to ${join(disk, 'out.lbx')}`, free: [0, 16 * KIB] },
  { name: 'pull', argv: () => ['pull', `127.0.0.1:${port}/big:1`], doing: () => `pulling 127.0.0.1:${port}/big:1`, free: [0, 16 * KIB] },
  { name: 'gc', argv: () => ['gc'], doing: () => 'collecting garbage', free: [0] },
  { name: 'box fork', argv: () => ['box', 'fork', 'b1', 'b9'], doing: () => 'forking box b1 as b9', free: [0] },
];

describe(`a full disk under the store (${root ? 'a 20 MiB tmpfs' : 'a stand-in disk'})`, () => {
  beforeAll(async () => {
    const r = await cli(other, 'export', 'big:1', '-o', join(tmp, 'other-export.lbx'));
    expect(r.code, r.stderr).toBe(0);
  });

  for (const c of commands)
    for (const free of c.free)
      it(`${c.name} with ${free} bytes free: one line, exit 1, the store intact once space is freed`, async () => {
        fill(free);
        let r: CliRun;
        try {
          r = await lb(...c.argv());
        } finally {
          unfill();
        }
        expectOneLine(r, c.argv().join(' '));
        expect(r.stderr).toBe(`layerbox: no space left on device while ${c.doing()}\n`);
        // Sound and unchanged: fsck clean, the same images, boxes and contents, no temp file left behind.
        const f = await ok('fsck');
        expect(f.stdout).toMatch(/^ok: \d+ blobs verified$/m);
        expect(await state()).toEqual(before);
        expect(readdirSync(join(store, 'tmp'))).toEqual([]);
        // A failed export leaves no partial output.
        expect(existsSync(join(disk, 'out.lbx'))).toBe(false);
      });

  it('a read-only disk: one line naming it, the store intact once writable again', async () => {
    if (root) execFileSync('mount', ['-o', 'remount,ro', disk]);
    else [fakeFree, fakeCode] = [0, 'EROFS'];
    let r: CliRun;
    try {
      r = await lb('box', 'fork', 'b1', 'b9');
    } finally {
      if (root) execFileSync('mount', ['-o', 'remount,rw', disk]);
      [fakeFree, fakeCode] = [null, 'ENOSPC'];
    }
    expectOneLine(r, 'box fork on a read-only disk');
    expect(r.stderr).toBe('layerbox: read-only file system while forking box b1 as b9\n');
    expect((await ok('fsck')).stdout).toMatch(/^ok: /m);
    expect(await state()).toEqual(before);
  });

  it('with the space back, every one of those commands succeeds (the control)', async () => {
    rmSync(join(disk, 'out.lbx'), { force: true });
    for (const c of commands) await ok(...c.argv());
    expect((await ok('fsck')).stdout).toMatch(/^ok: /m);
  });
});
