import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../fixtures.js';
import { bytes, code, storeWithImage } from '../helpers.js';
import { Overlay } from '../../src/index.js';
import { readTarAt, tarPieces } from '../../runtime/node/index.js';

/**
 * A guest grows a file far past what fits in memory (ftruncate to 8 TiB,
 * pwrite at 1 TiB): the host stays up, the guest gets EFBIG past the largest
 * file size, and within it a sparse file costs what it holds. A 5 GiB sparse
 * file then goes everywhere a file goes (cp out and in, commit, bundle, OCI
 * and docker archives and back) with the CLI's memory bounded.
 */

const GUEST = resolve('test/attack/guests/build/size_big.wasm');
const TIB = 2 ** 40;
const FIVE_GIB = 5 * 2 ** 30;
/** Peak RSS any one CLI command may reach here: far below any file it moves. */
const RSS_BOUND = 200 * 1024 * 1024;

let tmp: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Peak resident memory of the CLI process, in bytes. */
  peak: number;
}

/**
 * Runs the built CLI and measures its peak RSS: by /usr/bin/time where the
 * machine has it, else from the high-water mark in /proc/<pid>/status, read
 * until the process ends.
 */
function lbm(store: string, ...argv: string[]): Promise<Run> {
  const timed = existsSync('/usr/bin/time');
  const args = [CLI, '--store', store, ...argv];
  const child = timed
    ? spawn('/usr/bin/time', ['-f', 'LAYERBOX_PEAK_KB %M', process.execPath, ...args], { env: { ...process.env, LAYERBOX_STORE: '' } })
    : spawn(process.execPath, args, { env: { ...process.env, LAYERBOX_STORE: '' } });
  let stdout = '', stderr = '', hwm = 0;
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  const poll = timed
    ? null
    : setInterval(() => {
        void readFile(`/proc/${child.pid}/status`, 'utf8').then((s) => {
          const m = /VmHWM:\s+(\d+) kB/.exec(s);
          if (m) hwm = Math.max(hwm, Number(m[1]) * 1024);
        }, () => {});
      }, 20);
  return new Promise((done) => {
    child.on('close', (code) => {
      if (poll) clearInterval(poll);
      let peak = hwm;
      const m = /LAYERBOX_PEAK_KB (\d+)\s*$/.exec(stderr);
      if (m) {
        peak = Number(m[1]) * 1024;
        stderr = stderr.slice(0, m.index);
      }
      // `time` reports the program's status on a line of its own when it is not 0.
      stderr = stderr.replace(/Command exited with non-zero status \d+\n?$/, '');
      done({ code: code ?? -1, stdout, stderr, peak });
    });
  });
}

/** Runs the size guest in a box on one file; its lines of output. */
async function guest(store: string, box: string, file: string, ...ops: string[]): Promise<Run & { lines: string[] }> {
  const r = await lbm(store, 'run', '--box', box, GUEST, file, ...ops);
  return { ...r, lines: r.stdout.trimEnd().split('\n') };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  return total;
}

/** Bytes at `offset` of a host file, read without reading the rest. */
async function hostBytes(path: string, offset: number, length: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    const { bytesRead } = await fh.read(b, 0, length, offset);
    return b.subarray(0, bytesRead).toString('latin1').replace(/\0/g, '.');
  } finally {
    await fh.close();
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-size-'));
  await mkdir(join(tmp, 'tree'));
  await writeFile(join(tmp, 'tree', 'hello'), 'hi\n');
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('tar sizes past the octal field', () => {
  it('a 9 GiB member is written with a pax size and a base-256 field, and read back at its size; a lying size is refused', async () => {
    const size = 9 * 2 ** 30 + 3;
    const zeros = new Uint8Array(1 << 20);
    const body = function* () {
      for (let o = 0; o < size; o += zeros.length) yield zeros.subarray(0, Math.min(zeros.length, size - o));
    };
    // The archive as a virtual file: its headers kept, its content (zeros) never made.
    const it = tarPieces([{ path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size, body }, { path: 'after', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new TextEncoder().encode('x') }]);
    const head: Uint8Array[] = [];
    let headLen = 0;
    for (let r = it.next(); !r.done && headLen < 2048; r = it.next()) {
      head.push(r.value);
      headLen += r.value.length;
    }
    const header = Buffer.concat(head).subarray(0, 1536);
    expect(header.subarray(0, 512).toString('latin1')).toContain('PaxHeader');
    expect(header.subarray(512, 1024).toString('latin1')).toContain(` size=${size}\n`);
    expect(header[1024 + 124]).toBe(0x80); // base-256 in the member's own header
    const tail = [...tarPieces([{ path: 'after', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new TextEncoder().encode('x') }])];
    const dataEnd = 1536 + Math.ceil(size / 512) * 512;
    const tailBytes = Buffer.concat(tail);
    const total = dataEnd + tailBytes.length;
    const readAt = async (pos: number, len: number): Promise<Uint8Array> => {
      const out = new Uint8Array(len);
      for (let i = 0; i < len; i++) {
        const p = pos + i;
        out[i] = p < 1536 ? header[p]! : p >= dataEnd ? tailBytes[p - dataEnd]! : 0;
      }
      return out;
    };
    const members = [];
    for await (const m of readTarAt(readAt, total)) members.push({ path: m.entry.path, size: m.size, offset: m.offset });
    expect(members).toEqual([{ path: 'big', size, offset: 1536 }, { path: 'after', size: 1, offset: dataEnd + 512 }]);
    // The same headers over a file too short for the size they claim: a clear error, nothing allocated.
    await expect((async () => {
      for await (const _ of readTarAt(readAt, 1536 + 4096));
    })()).rejects.toThrow(expect.objectContaining({ code: 'CORRUPT', message: expect.stringMatching(/tar is truncated/) }));
  });
});

describe('quota counts of huge sparse files', () => {
  it('count stretches of holes as a chunk-by-chunk count would, over random truncates and writes far apart', async () => {
    const store = await storeWithImage({ a: 'a'.repeat(4000), c: 'c'.repeat(37) }, { chunkSize: 4 });
    const fs = (await store.createBox('r', { image: 'base', limits: { maxFileBytes: 2_000_000 } })).fs;
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const names = ['/a', '/c', '/n'];
    // The same overlay counted chunk by chunk, the way the count went before it skipped holes.
    const dense = function (this: unknown, lo: number, hi: number, _m: unknown, _c: unknown, g: (k: number) => number): number {
      let t = 0;
      for (let k = lo; k <= hi; k++) t += g(k);
      return t;
    };
    const proto = Overlay.prototype as unknown as { sumChunks: typeof dense };
    const sparse = proto.sumChunks;
    for (let i = 0; i < 120; i++) {
      const p = names[rnd(names.length)]!;
      const ops = [() => fs.truncate(p, rnd(1_500_000)), () => fs.pwrite(p, rnd(1_500_000), bytes('Q'.repeat(1 + rnd(9)))), () => fs.writeFile(p, 'w'.repeat(rnd(12)))];
      expect(code(() => ops[rnd(ops.length)]!())).toBe('ok');
      const inc = fs.usage;
      fs.recount();
      expect(fs.usage, `step ${i}`).toEqual(inc);
      proto.sumChunks = dense;
      try {
        fs.recount();
      } finally {
        proto.sumChunks = sparse;
      }
      expect(fs.usage, `step ${i}, chunk by chunk`).toEqual(inc);
    }
    expect(code(() => fs.truncate('/n', 2_000_001))).toBe('EFBIG');
  });
});

describe('file sizes are bounded and sparse files are cheap', () => {
  it('ftruncate to 8 TiB gets EFBIG; a 1 TiB sparse file costs what it holds, in the run, the upper and the committed layer', async () => {
    const store = join(tmp, 'st1');
    expect((await lbm(store, 'image', 'import', join(tmp, 'tree'), '--tag', 'base')).code).toBe(0);
    expect((await lbm(store, 'box', 'create', 'b', '--image', 'base')).code).toBe(0);
    const end = TIB - 6;
    const r = await guest(store, 'b', '/big',
      `t:${2 ** 43}`, // far past the limit: refused, nothing allocated
      `t:${TIB}`, // the limit itself: fine, all holes
      `w:${end}:theend`, // the last bytes
      'w:1000000:middle',
      `w:${TIB}:x`, // one byte past the limit
      `s:${TIB + 4096}:y`, // seek past it, then write
      `a:0:${2 ** 43}`, // posix_fallocate past it
      `t:${2 ** 62}`,
      'z',
      `r:${end - 4}:20`,
      'r:999998:10');
    expect(r.stderr).toBe('');
    expect(r.lines).toEqual(['EFBIG', 'ok', 'ok', 'ok', 'EFBIG', 'EFBIG', 'EFBIG', 'EFBIG', String(TIB), '....theend', '..middle..']);
    expect(r.code).toBe(0);
    expect(r.peak).toBeLessThan(RSS_BOUND);

    // The upper and the committed layer hold two chunks and a sparse chunk list, not 16 million entries.
    const before = await dirBytes(store);
    const c = await lbm(store, 'commit', 'b', '--tag', 'big');
    expect(c.code).toBe(0);
    expect(c.peak).toBeLessThan(RSS_BOUND);
    expect(await dirBytes(store) - before).toBeLessThan(512 * 1024);
    expect((await lbm(store, 'diff', 'b')).stdout).toBe('');

    // Read back from the layer in a fresh box over the committed image, and in a fork of it.
    expect((await lbm(store, 'box', 'create', 'b2', '--image', 'big')).code).toBe(0);
    const back = await guest(store, 'b2', '/big', 'z', `r:${end - 4}:20`, 'r:999998:10');
    expect(back.lines).toEqual([String(TIB), '....theend', '..middle..']);
    expect(back.peak).toBeLessThan(RSS_BOUND);
    expect((await lbm(store, 'box', 'fork', 'b2', 'b3')).code).toBe(0);
    const forked = await guest(store, 'b3', '/big', 'w:2000000:fork', 'r:1999999:6');
    expect(forked.lines).toEqual(['ok', '.fork.']);
    expect((await lbm(store, 'diff', 'b3')).stdout.trim()).toBe('C /big');
  }, 10 * 60_000);

  it('box create --max-file-bytes sets the largest file a guest may make', async () => {
    const store = join(tmp, 'st2');
    expect((await lbm(store, 'image', 'import', join(tmp, 'tree'), '--tag', 'base')).code).toBe(0);
    expect((await lbm(store, 'box', 'create', 'small', '--image', 'base', '--max-file-bytes', '1M')).code).toBe(0);
    const r = await guest(store, 'small', '/f', 't:1048576', 't:1048577', 'w:1048575:ab', 'w:1048574:ab', `s:${2 ** 20}:z`, 'z');
    expect(r.lines).toEqual(['ok', 'EFBIG', 'EFBIG', 'ok', 'EFBIG', '1048576']);
    expect((await lbm(store, 'box', 'create', 'bad', '--image', 'base', '--max-file-bytes', 'lots')).code).not.toBe(0);
  }, 5 * 60_000);

  it('a 5 GiB sparse file goes through cp, commit, bundle, OCI and docker archives and back, the CLI bounded in memory', async () => {
    const store = join(tmp, 'st5');
    expect((await lbm(store, 'image', 'import', join(tmp, 'tree'), '--tag', 'base')).code).toBe(0);
    expect((await lbm(store, 'box', 'create', 'f', '--image', 'base')).code).toBe(0);
    // Written pieces spread out: the start, past 2 GiB and 4 GiB (where 32-bit lengths wrap), and the very end.
    const marks: Array<[number, string]> = [[0, 'start'], [2 ** 31 + 5, 'past2g'], [2 ** 32 + 70000, 'past4g'], [FIVE_GIB - 6, 'theend']];
    const reads = marks.map(([o, s]) => `r:${o}:${s.length}`);
    const w = await guest(store, 'f', '/five', `t:${FIVE_GIB}`, ...marks.map(([o, s]) => `w:${o}:${s}`), 'z');
    expect(w.lines).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', String(FIVE_GIB)]);
    const expected = marks.map(([, s]) => s);

    // cp out: the host file has the size and the bytes, and stays sparse.
    const out = join(tmp, 'five.out');
    const cp = await lbm(store, 'cp', 'f:/five', out);
    expect(cp.code).toBe(0);
    expect(cp.peak).toBeLessThan(RSS_BOUND);
    const st = await stat(out);
    expect(st.size).toBe(FIVE_GIB);
    expect(st.blocks * 512).toBeLessThan(16 * 1024 * 1024);
    for (const [o, s] of marks) expect(await hostBytes(out, o, s.length)).toBe(s);
    expect(await hostBytes(out, 2 ** 32 + 60000, 4)).toBe('....');

    // cp back in, into another box (streamed; zero pieces stay holes), and read through a guest.
    expect((await lbm(store, 'box', 'create', 'g', '--image', 'base')).code).toBe(0);
    const cpIn = await lbm(store, 'cp', out, 'g:/again');
    expect(cpIn.code).toBe(0);
    expect(cpIn.peak).toBeLessThan(RSS_BOUND);
    expect((await guest(store, 'g', '/again', 'z', ...reads)).lines).toEqual([String(FIVE_GIB), ...expected]);
    await rm(out);

    const commit = await lbm(store, 'commit', 'f', '--tag', 'five');
    expect(commit.code).toBe(0);
    expect(commit.peak).toBeLessThan(RSS_BOUND);

    /** Imports `file` into a fresh store and reads the marks back through a guest. */
    const roundTrip = async (file: string, name: string, tag: string[]): Promise<void> => {
      const other = join(tmp, `st-${name}`);
      const imp = await lbm(other, 'import', file, ...tag);
      expect(imp.stderr).toBe('');
      expect(imp.code).toBe(0);
      expect(imp.peak).toBeLessThan(RSS_BOUND);
      const image = tag.length ? tag[1]! : 'five';
      expect((await lbm(other, 'box', 'create', 'r', '--image', image)).code).toBe(0);
      expect((await guest(other, 'r', '/five', 'z', ...reads)).lines).toEqual([String(FIVE_GIB), ...expected]);
      await rm(other, { recursive: true, force: true });
    };

    // A bundle holds chunks, not files: small, and back again.
    const bundle = join(tmp, 'five.bundle');
    const eb = await lbm(store, 'export', 'five', '-o', bundle);
    expect(eb.code).toBe(0);
    expect(eb.peak).toBeLessThan(RSS_BOUND);
    expect((await stat(bundle)).size).toBeLessThan(4 * 1024 * 1024);
    await roundTrip(bundle, 'bundle', []);

    for (const format of ['oci', 'docker']) {
      const file = join(tmp, `five.${format}.tar`);
      const e = await lbm(store, 'export', 'five', '-o', file, '--format', format);
      expect(e.stderr).toBe('');
      expect(e.code).toBe(0);
      expect(e.peak).toBeLessThan(RSS_BOUND);
      await roundTrip(file, format, ['--tag', `five-${format}`]);
      await rm(file, { force: true });
    }
  }, 30 * 60_000);
});
