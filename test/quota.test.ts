import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes, code, storeWithImage, text } from './helpers.js';
import { LayerboxError, capMemory } from '../src/index.js';

describe('box quotas (library)', () => {
  it('writes up to maxUpperBytes succeed, the next gets ENOSPC with nothing half-written, and deleting frees room', async () => {
    const store = await storeWithImage({ 'etc/motd': 'hello' }, { chunkSize: 16 });
    const box = await store.createBox('q', { image: 'base', limits: { maxUpperBytes: 40 } });
    expect(box.state.limits).toEqual({ maxUpperBytes: 40 });
    const fs = box.fs;
    fs.writeFile('/a', 'x'.repeat(30));
    expect(fs.usage.upperBytes).toBe(30);
    fs.writeFile('/b', 'y'.repeat(10));
    expect(fs.usage.upperBytes).toBe(40);
    // One byte more fails, on a new file and on growing an old one.
    expect(code(() => fs.writeFile('/c', 'z'))).toBe('ENOSPC');
    expect(fs.readFile('/c').length).toBe(0); // created empty, nothing written
    expect(code(() => fs.pwrite('/a', 28, bytes('QQQQ')))).toBe('ENOSPC');
    expect(text(fs.readFile('/a'))).toBe('x'.repeat(30));
    expect(code(() => fs.truncate('/b', 11))).toBe('ENOSPC');
    expect(fs.stat('/b').size).toBe(10);
    // Overwriting in place costs nothing more.
    fs.pwrite('/a', 0, bytes('A'.repeat(30)));
    expect(fs.usage.upperBytes).toBe(40);
    // Delete, then write again.
    fs.unlink('/a');
    expect(fs.usage.upperBytes).toBe(10);
    fs.pwrite('/c', 0, bytes('z'.repeat(30)));
    expect(text(fs.readFile('/c'))).toBe('z'.repeat(30));
    // Shrinking frees room too.
    fs.truncate('/c', 5);
    expect(fs.usage.upperBytes).toBe(15);
    // The counters survive a flush and a reopen (recomputed from the upper's table).
    await box.flush();
    expect(fs.usage.upperBytes).toBe(15);
    const again = await store.openBox('q');
    expect(again.fs.usage).toEqual(fs.usage);
    expect(code(() => again.fs.writeFile('/d', 'd'.repeat(26)))).toBe('ENOSPC');
    again.fs.writeFile('/d', 'd'.repeat(25));
    // Fork, reset and commit keep the limits.
    await again.flush();
    const f = await again.fork('q2');
    expect(f.state.limits).toEqual({ maxUpperBytes: 40 });
    expect(code(() => f.fs.writeFile('/e', 'e'))).toBe('ENOSPC');
    await f.reset();
    expect(f.fs.usage).toEqual({ upperBytes: 0, files: 0 });
    f.fs.writeFile('/e', 'e'.repeat(40));
    expect(code(() => f.fs.writeFile('/e2', 'e'))).toBe('ENOSPC');
    await f.commit({ tag: 'base:q2' });
    expect(f.state.limits).toEqual({ maxUpperBytes: 40 });
    expect((await store.openBox('q2')).state.limits).toEqual({ maxUpperBytes: 40 });
    f.fs.writeFile('/e3', 'e'.repeat(40));
    expect(code(() => f.fs.writeFile('/e4', 'e'))).toBe('ENOSPC');
    expect((await store.fsck()).problems).toEqual([]);
  });

  it('maxFiles counts the entries the upper adds and gives EDQUOT', async () => {
    const store = await storeWithImage({ 'etc/motd': 'hello', 'etc/old': 'old' });
    const fs = (await store.createBox('n', { image: 'base', limits: { maxFiles: 3 } })).fs;
    // Changing and removing image files adds nothing.
    fs.writeFile('/etc/motd', 'changed');
    fs.unlink('/etc/old');
    fs.rename('/etc/motd', '/etc/motd2');
    expect(fs.usage.files).toBe(0);
    fs.mkdir('/d');
    fs.writeFile('/d/f', 'x');
    fs.symlink('/d/f', '/s');
    expect(fs.usage.files).toBe(3);
    expect(code(() => fs.writeFile('/g', 'x'))).toBe('EDQUOT');
    expect(code(() => fs.mkdir('/e'))).toBe('EDQUOT');
    expect(code(() => fs.symlink('x', '/t'))).toBe('EDQUOT');
    expect(code(() => fs.link('/d/f', '/d/f2'))).toBe('EDQUOT');
    expect(fs.exists('/g') || fs.exists('/e') || fs.exists('/t') || fs.exists('/d/f2')).toBe(false);
    expect(fs.stat('/d/f').nlink).toBe(1);
    // Renames add nothing; deleting frees an entry.
    fs.rename('/d/f', '/d/f3');
    expect(fs.usage.files).toBe(3);
    fs.unlink('/s');
    fs.link('/d/f3', '/d/f4');
    expect(fs.usage.files).toBe(3);
    expect(code(() => fs.open('/h', { create: true }))).toBe('EDQUOT');
    fs.unlink('/d/f3');
    fs.unlink('/d/f4');
    fs.rmdir('/d');
    expect(fs.usage.files).toBe(0);
    fs.writeFile('/h', 'h');
    expect(fs.usage.files).toBe(1);
  });

  it('a 1-byte change to a big image file costs one chunk, not the file', async () => {
    const big = Array.from({ length: 10 * 1024 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    const store = await storeWithImage({ 'big.txt': big }, { chunkSize: 1024 });
    const box = await store.createBox('big', { image: 'base', limits: { maxUpperBytes: 1024 } });
    box.fs.pwrite('/big.txt', 5000, bytes('!'));
    expect(box.fs.usage.upperBytes).toBe(1024);
    expect(code(() => box.fs.pwrite('/big.txt', 9000, bytes('!')))).toBe('ENOSPC');
    expect(text(box.fs.pread('/big.txt', 9000, 1))).toBe(big[9000]);
    // Writing the image's bytes back costs nothing once flushed (the chunk is the image's again).
    box.fs.pwrite('/big.txt', 5000, bytes(big[5000]!));
    await box.flush();
    expect(box.fs.usage.upperBytes).toBe(0);
    box.fs.pwrite('/big.txt', 9000, bytes('!'));
    expect((await store.openBox('big')).fs.usage.upperBytes).toBe(0); // not flushed yet
    await box.flush();
    expect((await store.openBox('big')).fs.usage.upperBytes).toBe(1024);
    // Growing the file past the image's size costs the new bytes (holes included).
    expect(code(() => box.fs.truncate('/big.txt', big.length + 1))).toBe('ENOSPC');
    expect(box.fs.stat('/big.txt').size).toBe(big.length);
  });

  it('keeps its counters equal to a recount over random changes', async () => {
    const store = await storeWithImage({ 'a': 'aaaaaaaaaaaaaaaaaaaaa', 'd': null, 'd/b': 'bbbbbbbbbbb', 'c': 'cccccccccccccccccccccccccccccc' }, { chunkSize: 4 });
    const fs = (await store.createBox('r', { image: 'base', limits: { maxUpperBytes: 60, maxFiles: 6 } })).fs;
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const names = ['/a', '/c', '/d/b', '/d/x', '/y', '/e', '/e/z'];
    const pick = () => names[rnd(names.length)]!;
    const seen = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const p = pick();
      const ops = [
        () => fs.pwrite(p, rnd(40), bytes('Q'.repeat(1 + rnd(9)))),
        () => fs.truncate(p, rnd(45)),
        () => fs.writeFile(p, 'w'.repeat(rnd(12))),
        () => fs.unlink(p),
        () => fs.mkdir(p),
        () => fs.rmdir(p),
        () => fs.symlink('t', p),
        () => fs.link(p, pick()),
        () => fs.rename(p, pick()),
      ];
      const c = code(() => ops[rnd(ops.length)]!());
      seen.set(c, (seen.get(c) ?? 0) + 1);
      const inc = fs.usage;
      expect(inc.upperBytes).toBeLessThanOrEqual(60);
      expect(inc.files).toBeLessThanOrEqual(6);
      fs.recount();
      expect(fs.usage, `step ${i}`).toEqual(inc);
    }
    // The walk both succeeds and runs into both limits.
    expect(seen.get('ok')).toBeGreaterThan(80);
    expect(seen.get('ENOSPC')).toBeGreaterThan(0);
    expect(seen.get('EDQUOT')).toBeGreaterThan(0);
  });

  it('rejects bad limits', async () => {
    const store = await storeWithImage({ 'a': 'a' });
    await expect(store.createBox('x', { image: 'base', limits: { maxFiles: -1 } })).rejects.toThrow(/maxFiles/);
    await expect(store.createBox('x', { image: 'base', limits: { maxUpperBytes: 1.5 } })).rejects.toThrow(/maxUpperBytes/);
  });
});

const exec = promisify(execFile);
const CLI = resolve('dist/cli.js');
const GUEST = resolve('test/wasi/build/guest.wasm');

describe('box quotas (built CLI)', () => {
  let tmp: string;
  let store: string;
  const lb = (argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((done) => {
      const child = spawn(process.execPath, [CLI, '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '' } });
      let stdout = '', stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (c) => done({ code: c ?? -1, stdout, stderr }));
      child.stdin.end();
    });

  beforeAll(async () => {
    if (!existsSync(CLI) || !existsSync(resolve('dist/worker.js'))) await exec('node', ['esbuild.config.mjs']);
    tmp = await mkdtemp(join(tmpdir(), 'layerbox-quota-'));
    store = join(tmp, 'store');
    await mkdir(join(tmp, 'tree/etc'), { recursive: true });
    await writeFile(join(tmp, 'tree/etc/motd'), 'hello\n');
    expect((await lb(['image', 'import', join(tmp, 'tree'), '--tag', 'base'])).code).toBe(0);
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('the guest sees EDQUOT / ENOSPC, the CLI exits with its status, the store stays sound', async () => {
    expect((await lb(['box', 'create', 'q', '--image', 'base', '--max-files', '1', '--max-upper-bytes', '100'])).code).toBe(0);
    expect((await lb(['box', 'create', 'bad', '--image', 'base', '--max-files', '-3'])).code).toBe(2);
    expect(JSON.parse((await lb(['box', 'ls', '--json'])).stdout)[0].limits).toEqual({ maxUpperBytes: 100, maxFiles: 1 });
    expect(await lb(['run', '--box', 'q', GUEST, '--', 'write', '/a.txt', 'first'])).toMatchObject({ code: 0, stdout: 'wrote /a.txt\n' });
    // A second new file passes maxFiles: fopen fails with EDQUOT (19), the guest exits 1.
    expect(await lb(['run', '--box', 'q', GUEST, '--', 'write', '/b.txt', 'second'])).toMatchObject({ code: 1, stdout: 'write /b.txt: errno 19\n' });
    // A long text passes maxUpperBytes: the write fails whole (the guest does not check fputs), nothing half-written.
    await lb(['run', '--box', 'q', GUEST, '--', 'write', '/a.txt', 'x'.repeat(5000)]);
    const cat = await lb(['cat', 'q:/a.txt']);
    expect(cat.code).toBe(0);
    expect(cat.stdout.length).toBeLessThanOrEqual(100);
    expect(cat.stdout).not.toContain('x');
    // The box stays usable: a write within the limit works.
    expect(await lb(['run', '--box', 'q', GUEST, '--', 'write', '/a.txt', 'y'.repeat(100)])).toMatchObject({ code: 0 });
    expect((await lb(['cat', 'q:/a.txt'])).stdout).toBe('y'.repeat(100));
    expect((await lb(['fsck'])).code).toBe(0);
  });
});

describe('guest memory limits', () => {
  const guest = () => new Uint8Array(readFileSync(GUEST));

  it('a guest past maxMemoryBytes sees malloc fail and stops; the box and the host go on', async () => {
    const store = await storeWithImage({ '/etc': null });
    const box = await store.createBox('m', { image: 'base' });
    const r = await box.run(guest(), { args: ['guest', 'alloc', '64'], maxMemoryBytes: 16 << 20 });
    expect(r.exitCode).toBe(3);
    const got = Number(/malloc failed after (\d+) MiB/.exec(text(r.stdout))?.[1]);
    expect(got).toBeGreaterThan(8);
    expect(got).toBeLessThan(16);
    // Without the limit the same guest gets its 64 MiB; the box is unharmed by the stopped run.
    expect(text((await box.run(guest(), { args: ['guest', 'alloc', '64'] })).stdout)).toBe('allocated 64 MiB\n');
    expect((await box.run(guest(), { args: ['guest', 'write', '/after', 'ok'], maxMemoryBytes: 16 << 20 })).exitCode).toBe(0);
    expect(text(box.fs.readFile('/after'))).toBe('ok');
  });

  it('refuses limits a module cannot meet, with a clear error', async () => {
    const store = await storeWithImage({ '/etc': null });
    const box = await store.createBox('m', { image: 'base' });
    await expect(box.run(guest(), { maxMemoryBytes: 100 })).rejects.toThrow(expect.objectContaining({ code: 'INVALID', message: expect.stringMatching(/memory limit: at least 64 KiB/) }));
    // The guest's data and stack need more than one page at start.
    await expect(box.run(guest(), { maxMemoryBytes: 65536 })).rejects.toThrow(expect.objectContaining({ code: 'QUOTA', message: expect.stringMatching(/memory limit: the module needs \d+ KiB of memory at start, more than the limit of 64 KiB/) }));
    await expect(box.run(await WebAssembly.compile(guest()), { maxMemoryBytes: 1 << 20 })).rejects.toThrow(/needs the module as bytes/);
    // (module (import "env" "memory" (memory 1)))
    const imported = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 2, 0x0f, 1, 3, 0x65, 0x6e, 0x76, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0, 1]);
    expect(() => capMemory(imported, 1 << 20)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED', message: expect.stringMatching(/imports its memory/) }));
    expect(() => capMemory(new Uint8Array([1, 2, 3]), 1 << 20)).toThrow(expect.objectContaining({ code: 'CORRUPT', message: expect.stringMatching(/not a WebAssembly module/) }));
    expect(() => capMemory(guest().subarray(0, 40), 1 << 20)).toThrow(LayerboxError);
    expect(() => capMemory(guest().subarray(0, 40), 1 << 20)).toThrow(expect.objectContaining({ code: 'CORRUPT' }));
  });

  it('run --memory stops a hungry guest; the CLI reports its exit code', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'layerbox-mem-'));
    try {
      const run = (...argv: string[]) => promisify(execFile)(process.execPath, [CLI, '--store', join(tmp, 's'), ...argv], { env: { ...process.env, LAYERBOX_STORE: '' } }).then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));
      await mkdir(join(tmp, 'tree'));
      expect((await run('image', 'import', join(tmp, 'tree'), '--tag', 'empty')).code).toBe(0);
      const r = await run('run', '--image', 'empty', '--memory', '16M', GUEST, '--', 'alloc', '1000');
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^malloc failed after \d+ MiB\n$/);
      expect(await run('run', '--image', 'empty', '--memory', 'lots', GUEST, '--', 'alloc', '1')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--memory takes a size such as/) });
      expect(await run('run', '--image', 'empty', '-m', '64k', GUEST, '--', 'alloc', '1')).toMatchObject({ code: 1, stderr: expect.stringMatching(/^layerbox: memory limit: the module needs/) });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
