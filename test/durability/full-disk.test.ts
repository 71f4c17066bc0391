// Point 1 of "a durable, bounded write path", as a user meets it: the store is
// on a small disk (a 16 MiB tmpfs this test mounts; it runs as root) that
// fills while a guest in a named box writes a file and fsyncs after each
// step. The guest gets ENOSPC (or EDQUOT/EIO) on the call that failed and is
// not trapped; `run` exits non-zero; the store stays sound (fsck, cat, a
// commit that either works or tags nothing); once space is freed the box
// runs, flushes and commits, and holds at least every byte that was synced.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fillDisk } from '../helpers.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestBytes } from './guest-bytes.js';

const CLI = resolve('dist/cli.js');
const SYNC = resolve('test/durability/guests/build/sync.wasm');
const GUEST = resolve('test/wasi/build/guest.wasm');
const STEP = 128 << 10;
/** More than the disk holds: the guest must meet a full disk before it gets there. */
const MAX = 64 << 20;
/** Room left on the disk when the guest starts: a few of its steps. */
const FREE = 1 << 20;

let tmp: string;
let disk: string;
let store: string;
let mounted = false;

interface Run { code: number | null; stdout: Buffer; stderr: string }

/** Runs the built CLI on the store on the small disk; stdout as bytes. Never throws. */
function lb(...argv: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, '--store', store, ...argv], { encoding: 'buffer', env: { ...process.env, LAYERBOX_STORE: '', LAYERBOX_DEBUG: '' }, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown }) | null;
      done({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr: stderr.toString() });
    });
  });
}
async function ok(...argv: string[]): Promise<Run> {
  const r = await lb(...argv);
  expect(r.code, `layerbox ${argv.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}
async function fsckClean(when: string): Promise<void> {
  const f = await lb('fsck');
  expect.soft(`exit ${f.code}\n${f.stdout}${f.stderr}`, `fsck ${when}`).toMatch(/^exit 0\nok: \d+ blobs verified\n$/);
}
async function tags(): Promise<string[]> {
  const images = JSON.parse((await ok('image', 'ls', '--json')).stdout.toString()) as Array<{ tags?: string[]; tag?: string; name?: string }>;
  return images.flatMap((i) => i.tags ?? (i.tag ? [i.tag] : i.name ? [i.name] : []));
}

const stream = guestBytes;

/** Leaves `free` bytes free on the disk: a filler file takes all the rest. */
function fill(free: number): void {
  fillDisk(join(disk, 'filler'), free);
}

beforeAll(async () => {
  if (!existsSync(CLI) || !existsSync(resolve('dist/worker.js'))) throw new Error('dist/ is missing: run npm run build first');
  tmp = mkdtempSync(join(tmpdir(), 'lb-durable-full-'));
  disk = join(tmp, 'disk');
  mkdirSync(disk);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', disk], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`this test needs a 16 MiB tmpfs for its store and could not mount one (it must run as root): ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`);
  }
  mounted = true;
  store = join(disk, 'store');
  mkdirSync(join(tmp, 'tree/etc'), { recursive: true });
  writeFileSync(join(tmp, 'tree/etc/motd'), 'hello from the image\n');
  await ok('image', 'import', join(tmp, 'tree'), '--tag', 'base');
  await ok('box', 'create', 'fillbox', '--image', 'base');
}, 60_000);

afterAll(() => {
  if (mounted) execFileSync('umount', [disk]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('a disk that fills while a guest writes and fsyncs in a named box (16 MiB tmpfs)', () => {
  it('the guest gets the error, run fails clearly, the store stays sound; with space back the box works and commits', async () => {
    fill(FREE);
    const r = await lb('run', '--box', 'fillbox', SYNC, '--', 'fill', '/big.bin', String(STEP), String(MAX));
    const said = r.stdout.toString();
    const m = /^failed: (write|fsync): (ENOSPC|EDQUOT|EIO) \(([^)]*)\)\nsynced: (\d+)\n$/.exec(said);
    expect(m, `the guest reports a failed write or fsync with ENOSPC, EDQUOT or EIO; it said: ${JSON.stringify(said)}; stderr: ${r.stderr}`).not.toBeNull();
    const [, call, errname, , syncedText] = m!;
    const synced = Number(syncedText);
    console.log(`full disk: the guest's ${call} failed with ${errname} after ${synced} bytes synced; layerbox run exited ${r.code}; stderr: ${JSON.stringify(r.stderr)}`);
    expect(r.stderr, 'the guest is not trapped').not.toMatch(/trap/);
    expect(r.code, `layerbox run exits non-zero (stderr: ${r.stderr})`).not.toBe(0);
    expect(r.code, 'layerbox run exits non-zero, not as a trap').not.toBe(134);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    // A failed final flush is said in one line naming the box and the cause; a flush that worked says nothing.
    if (lines.length) {
      expect(lines, `stderr of the run: ${r.stderr}`).toHaveLength(1);
      expect(lines[0]).toMatch(/^layerbox: /);
      expect(lines[0]).toMatch(/no space left on device/);
      expect(lines[0]).toMatch(/fillbox/);
    }

    // Sound while the disk is still full.
    await fsckClean('with the disk full');
    const cat = await lb('cat', 'fillbox:/big.bin');
    expect(cat.code, `cat fillbox:/big.bin with the disk full: ${cat.stderr}`).toBe(0);
    const written = stream(Math.max(synced, cat.stdout.length));
    expect(cat.stdout.length, 'cat gives at least the synced bytes').toBeGreaterThanOrEqual(synced);
    expect(cat.stdout.equals(written.subarray(0, cat.stdout.length)), 'cat gives what the guest wrote, byte for byte').toBe(true);
    const shown = cat.stdout;

    // A commit now either works (and fsck accepts its image) or refuses in one line and tags nothing.
    const c = await lb('commit', 'fillbox', '--tag', 'x');
    if (c.code === 0) {
      await fsckClean('after a commit on the full disk');
      expect(await tags()).toContain('x:latest');
    } else {
      expect(c.stderr.split('\n').filter((l) => l !== ''), `a refused commit says one line: ${c.stderr}`).toHaveLength(1);
      expect(c.stderr).toMatch(/^layerbox: /);
      expect((await tags()).filter((t) => t === 'x' || t.startsWith('x:')), 'a refused commit tags nothing').toEqual([]);
      await fsckClean('after a refused commit');
    }

    // Space back: the box runs, reads the file back, commits, and the image holds what cat showed.
    rmSync(join(disk, 'filler'));
    const back = await lb('run', '--box', 'fillbox', GUEST, '--', 'cat', '/big.bin');
    expect(back.code, `a run in the box once space is back: ${back.stderr}`).toBe(0);
    expect(back.stdout.equals(shown), 'the guest reads back what cat showed').toBe(true);
    await ok('commit', 'fillbox', '--tag', 'after');
    await fsckClean('after the commit with space back');
    const img = await lb('run', '--image', 'after', GUEST, '--', 'cat', '/big.bin');
    expect(img.code, img.stderr).toBe(0);
    expect(img.stdout.equals(shown), `the committed image's /big.bin equals what cat showed (${img.stdout.length} vs ${shown.length} bytes; ${img.stdout.subarray(0, 80).toString()})`).toBe(true);
  }, 120_000);
});
