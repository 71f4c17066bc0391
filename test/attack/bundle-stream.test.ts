// A bundle is imported from its file at offsets, never read whole: a bundle
// of hundreds of MiB of dense data imports with the CLI's peak RSS far below
// its size, its content intact. A truncated bundle or one with a flipped blob
// is refused with one line, the target's refs and packs as they were (every
// blob is checked before any is stored).
import { execFile } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TarEntry, readTar, readTarAt, tarPieces } from '../../runtime/node/index.js';
import { makeTree } from '../fixtures.js';
import { CLI, type CliRun, cli, expectOneLine } from './cli-run.js';

/** Dense data: every 64 KiB chunk distinct, so nothing dedups away. */
const DENSE = 640 * 2 ** 20;
/** The CLI's peak RSS while importing it: far below the bundle's size. */
const RSS_BOUND = 250 * 2 ** 20;

let tmp: string;

/** Runs the CLI and reports its peak RSS (VmHWM, read by the process itself as it exits). */
function cliRss(store: string, ...argv: string[]): Promise<CliRun & { peak: number }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(tmp, 'rss.mjs'), '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '', LAYERBOX_DEBUG: '' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown }) | null;
      const m = /\nmaxrss (\d+)\n$/.exec(stderr);
      done({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, killed: false, stdout, stderr: m ? stderr.slice(0, m.index) : stderr, peak: m ? Number(m[1]) * 1024 : NaN });
    });
  });
}

const ok = async (store: string, ...argv: string[]) => {
  const r = await cli(store, ...argv);
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
};

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(b as Buffer);
  return h.digest('hex');
}

/** What a refused import must not change: the refs document and the set of packs. */
const snapshot = (s: string) => ({ refs: readFileSync(join(s, 'refs.json'), 'utf8'), packs: readdirSync(join(s, 'packs')).sort() });

/** The blob members of a bundle file: where each one's content is. */
async function blobMembers(file: string): Promise<Array<{ path: string; offset: number; size: number }>> {
  const fh = await open(file, 'r');
  try {
    const readAt = async (pos: number, len: number) => {
      const b = new Uint8Array(len);
      const { bytesRead } = await fh.read(b, 0, len, pos);
      return b.subarray(0, bytesRead);
    };
    const out = [];
    for await (const m of readTarAt(readAt, (await fh.stat()).size)) if (m.entry.path.startsWith('blobs/')) out.push({ path: m.entry.path, offset: m.offset, size: m.size });
    return out;
  } finally {
    await fh.close();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lb-bundle-stream-'));
  writeFileSync(
    join(tmp, 'rss.mjs'),
    `import { readFileSync } from 'node:fs';\nprocess.on('exit', () => process.stderr.write('\\nmaxrss ' + /VmHWM:\\s*(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1] + '\\n'));\nawait import(${JSON.stringify(new URL(`file://${CLI}`).href)});\n`,
  );
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a big bundle streams', () => {
  it(`${DENSE >> 20} MiB of dense data: export, import into a fresh store with peak RSS under ${RSS_BOUND >> 20} MiB, content identical`, async () => {
    const tree = join(tmp, 'dense-tree');
    mkdirSync(tree);
    const dense = join(tree, 'dense.bin');
    // One random MiB, each 64 KiB chunk stamped with its number: fast to make, and no two chunks alike.
    const buf = randomFillSync(Buffer.alloc(1 << 20));
    const fh = await open(dense, 'w');
    for (let at = 0; at < DENSE; at += buf.length) {
      for (let c = 0; c < buf.length; c += 65536) buf.writeBigUInt64LE(BigInt(at + c), c);
      await fh.write(buf, 0, buf.length, at);
    }
    await fh.close();
    const src = join(tmp, 'src');
    await ok(src, 'image', 'import', tree, '--tag', 'dense:1');
    await ok(src, 'box', 'create', 'b', '--image', 'dense:1');
    writeFileSync(join(tmp, 'note.txt'), 'in the upper\n');
    await ok(src, 'cp', join(tmp, 'note.txt'), 'b:/note.txt');
    const lbx = join(tmp, 'dense.lbx');
    await ok(src, 'export', 'dense:1', '--box', 'b', '-o', lbx);
    const size = statSync(lbx).size;
    expect(size).toBeGreaterThan(DENSE);
    const digest = (await ok(src, 'image', 'ls', '--json')).stdout;

    const dst = join(tmp, 'dst');
    await ok(dst, 'image', 'ls');
    const imp = await cliRss(dst, 'import', lbx);
    expect(imp.code, imp.stderr).toBe(0);
    console.log(`bundle of ${(size / 2 ** 20).toFixed(0)} MiB: import peak RSS ${(imp.peak / 2 ** 20).toFixed(0)} MiB`);
    expect(imp.peak).toBeLessThan(RSS_BOUND);
    // The same image (content-addressed: its digest covers every chunk), the same bytes, the box's upper.
    const want = (JSON.parse(digest) as Array<{ digest: string }>)[0]!.digest;
    expect(imp.stdout).toContain(`${want} dense:1`);
    expect(imp.stdout).toContain('box b');
    const back = join(tmp, 'dense-back.bin');
    await ok(dst, 'cp', 'b:/dense.bin', back);
    expect(await sha256File(back)).toBe(await sha256File(dense));
    expect((await ok(dst, 'cat', 'b:/note.txt')).stdout).toBe('in the upper\n');
    expect((await cli(dst, 'fsck')).code).toBe(0);
    rmSync(tree, { recursive: true, force: true });
    rmSync(back, { force: true });
  }, 600_000);
});

describe('a bad bundle changes nothing', () => {
  let small: string;
  let target: string;
  beforeAll(async () => {
    const src = join(tmp, 'small-src');
    await makeTree(join(tmp, 'tree'));
    writeFileSync(join(tmp, 'other.txt'), 'other\n');
    await ok(src, 'image', 'import', join(tmp, 'tree'), '--tag', 't:1');
    await ok(src, 'box', 'create', 'b1', '--image', 't:1');
    await ok(src, 'cp', join(tmp, 'other.txt'), 'b1:/other.txt');
    small = join(tmp, 'small.lbx');
    await ok(src, 'export', 't:1', '--box', 'b1', '-o', small);
    target = join(tmp, 'target');
    await ok(target, 'image', 'import', join(tmp, 'tree'), '--tag', 'mine:1');
    await ok(target, 'box', 'create', 'keep', '--image', 'mine:1');
  });

  const refused = async (file: string, what: string, says: RegExp) => {
    const before = snapshot(target);
    expectOneLine(await cli(target, 'import', file), what, says);
    // Every blob is checked before any is stored: not even garbage for gc is left.
    expect(snapshot(target), what).toEqual(before);
  };

  it('the control: the same bundle, untouched, imports', async () => {
    const scratch = join(tmp, 'scratch');
    const r = await ok(scratch, 'import', small);
    expect(r.stdout).toContain('box b1');
    expect((await ok(scratch, 'cat', 'b1:/other.txt')).stdout).toBe('other\n');
  });

  it('a valid blob nothing uses is not stored (nothing left for gc)', async () => {
    const extra = new TextEncoder().encode('a blob no image or box uses\n');
    const name = `blobs/sha256/${createHash('sha256').update(extra).digest('hex')}`;
    const entries: TarEntry[] = readTar(new Uint8Array(readFileSync(small)));
    const file = join(tmp, 'extra.lbx');
    writeFileSync(file, Buffer.concat([...tarPieces([...entries, { path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: extra }])]));
    const count = async (store: string, bundle: string) => {
      await ok(store, 'import', bundle);
      return /ok: (\d+) blobs verified/.exec((await ok(store, 'fsck')).stdout)![1];
    };
    expect(await count(join(tmp, 'extra-a'), file)).toBe(await count(join(tmp, 'extra-b'), small));
  });

  it('truncated inside a blob: one line, refs and packs unchanged', async () => {
    const last = (await blobMembers(small)).at(-1)!;
    const file = join(tmp, 'truncated.lbx');
    writeFileSync(file, readFileSync(small));
    truncateSync(file, last.offset + Math.floor(last.size / 2));
    await refused(file, 'truncated bundle', /truncated/);
  });

  it('one byte of one blob flipped: one line naming the blob, refs and packs unchanged', async () => {
    const blobs = await blobMembers(small);
    // The last blob: every blob before it checks out, so only a full check before storing leaves nothing.
    const victim = blobs.filter((b) => b.size > 0).at(-1)!;
    const bytes = readFileSync(small);
    bytes[victim.offset + Math.floor(victim.size / 2)]! ^= 0x01;
    const file = join(tmp, 'flipped.lbx');
    writeFileSync(file, bytes);
    await refused(file, 'flipped blob', new RegExp(`${victim.path.slice('blobs/sha256/'.length)} does not match its digest`));
  });

  it('a blob member claiming 900 MiB under a wrong name: refused with one line, in bounded memory, nothing changed', async () => {
    const size = 900 * 2 ** 20;
    const entries: TarEntry[] = readTar(new Uint8Array(readFileSync(small)));
    const zeros = new Uint8Array(1 << 20);
    // Named as the bundle's first blob, its content 900 MiB of zeros (holes in the file: nothing to write).
    const name = entries.find((e) => e.path.startsWith('blobs/'))!.path;
    const big: TarEntry = { path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size, body: function* () {
      for (let o = 0; o < size; o += zeros.length) yield zeros.subarray(0, Math.min(zeros.length, size - o));
    } };
    const file = join(tmp, 'huge-member.lbx');
    const fd = openSync(file, 'w');
    let pos = 0;
    for (const piece of tarPieces([entries[0]!, big, ...entries.slice(1)])) {
      if (piece.buffer !== zeros.buffer) writeSync(fd, piece, 0, piece.length, pos);
      pos += piece.length;
    }
    ftruncateSync(fd, pos);
    closeSync(fd);
    expect(statSync(file).size).toBeGreaterThan(size);
    const before = snapshot(target);
    const r = await cliRss(target, 'import', file);
    expectOneLine(r, 'a 900 MiB member under a wrong name', /does not match its digest/);
    console.log(`900 MiB member under a wrong name: refused, peak RSS ${(r.peak / 2 ** 20).toFixed(0)} MiB`);
    expect(r.peak).toBeLessThan(RSS_BOUND);
    expect(snapshot(target)).toEqual(before);
  });
});
