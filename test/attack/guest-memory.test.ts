import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Errno, WasiExit, WasiHost } from '../../src/index.js';
import { Fd } from '../../src/wasi/fd.js';
import { OutputFd } from '../../src/wasi/stdio.js';
import { CLI, lb, makeTree } from '../fixtures.js';

const GUEST = resolve('test/attack/guests/build/mem_high.wasm');
let tmp: string;
let store: string;

beforeAll(async () => {
  if (!existsSync(CLI)) await promisify(execFile)(process.execPath, ['esbuild.config.mjs']);
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-guest-memory-'));
  store = join(tmp, 'store');
  await makeTree(join(tmp, 'tree'));
  expect((await lb(store, 'image', 'import', join(tmp, 'tree'), '--tag', 'base')).code).toBe(0);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const lines = (out: string, prefix: string) => out.split('\n').filter((l) => l.startsWith(prefix + ' ')).map((l) => l.slice(prefix.length + 1));

describe('a guest above 2 GiB of memory, through the CLI', () => {
  let out: string;
  beforeAll(async () => {
    expect((await lb(store, 'box', 'create', 'mem', '--image', 'base')).code).toBe(0);
    // No --memory: the module's own maximum (4 GiB here) holds.
    const r = await lb(store, 'run', '--box', 'mem', '--env', 'GREETING=hi', GUEST, '--', 'one', 'two');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    out = r.stdout;
  });

  it('gets the same answers with every argument above 2 GiB as from low memory', () => {
    expect(Number(lines(out, 'memory')[0])).toBeGreaterThan(2 ** 31);
    const low = lines(out, 'low');
    const high = lines(out, 'high');
    expect(low.length).toBeGreaterThan(60);
    expect(high).toEqual(low);
    // And the answers are the right ones, not the same nonsense twice.
    expect(low).toEqual(expect.arrayContaining([
      'arg 1 at+14 one', 'env 0 at+0 GREETING=hi', 'prestat name [/]', 'path_open=0', 'fd_write=0 n=23',
      'read 1 [hell]', 'read 2 [o from high memory\\x0a]', 'pread [llo from]', 'readlink [high-name.txt]',
      'fd_filestat_get=0 type=4 nlink=1 size=23', 'size after allocate=100', 'atim=1234000000000 mtim=5678000000000',
      ' event ud=9 err=0 type=1', ' event ud=7 err=0 type=0', 'random_get=0 changed>200=1',
      'fd_allocate overflow=28', 'fd_allocate negative=28',
    ]));
    // fd_readdir with a 2 GiB buffer (low) and one up to the end of memory (high) lists the directory.
    const names = (what: string) => low.filter((l) => l.startsWith(`${what}  entry`)).map((l) => l.replace(/.*name=/, ''));
    expect(names('dir')).toEqual(['.', '..', 'high-name.txt', 'link', 'moved.txt', 'sub']);
    expect(names('big buffer')).toEqual(names('dir'));
    // Listing a directory again hands out the same cookies (the host keeps one per name, not one per listing).
    const entries = (what: string) => low.filter((l) => l.startsWith(`${what}  entry`)).map((l) => l.slice(what.length));
    expect(entries('big buffer')).toEqual(entries('dir'));
  });

  it('names files by the bytes the guest wrote, wherever they are', async () => {
    for (const dir of ['low', 'high']) {
      const ls = await lb(store, 'ls', `mem:/${dir}`);
      expect(ls.code).toBe(0);
      expect(ls.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).pop())).toEqual(['high-name.txt']);
      expect((await lb(store, 'cat', `mem:/${dir}/high-name.txt`)).stdout).toBe('HEllo from high memory\n' + '\0'.repeat(77));
    }
  });

  it('answers EFAULT for memory the guest does not have, before doing anything', async () => {
    const fault = lines(out, 'fault');
    const calls = fault.filter((l) => !l.startsWith('setup') && !l.startsWith('after'));
    expect(calls.length).toBeGreaterThan(40);
    for (const l of calls) expect(l).toMatch(l.startsWith('path too long') ? / 37$/ : / 21$/);
    for (const l of fault.filter((l) => l.startsWith('setup'))) expect(l).toMatch(/ 0$/);
    expect(fault).toEqual(expect.arrayContaining([
      'after path_open out: stat 44', // the file was not created
      'after writes: size 0', // no byte of a faulting write landed
      'after reads and seek: position 0', // a faulting read or seek did not move the position
      'after rename: stat 0', // the file was not renamed
    ]));
    expect((await lb(store, 'cat', 'mem:/fault/w.txt')).stdout).toBe('AAAA');
  });

  it('runs with all 4 GiB of memory: the same answers from the last 2 MiB, EFAULT for ranges that wrap past 2^32', async () => {
    const r = await lb(store, 'run', '--image', 'base', GUEST, '--', 'top');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout, 'memory')).toEqual([String(2 ** 32)]);
    const low = lines(r.stdout, 'low');
    expect(low).toContain('read 2 [o from high memory\\x0a]');
    expect(lines(r.stdout, 'high')).toEqual(low);
    const fault = lines(r.stdout, 'fault');
    const calls = fault.filter((l) => !l.startsWith('setup') && !l.startsWith('after'));
    expect(calls.length).toBe(9);
    for (const l of calls) expect(l).toMatch(/ 21$/);
    // The last byte of memory is as good as any other.
    expect(fault).toEqual(expect.arrayContaining(['setup random_get to the last byte 0', 'setup clock_time_get at the last 8 bytes 0', 'after writes: size 0']));
  });

  it('with --memory below 2 GiB, the same guest sees memory.grow fail and stops on its own terms', async () => {
    const r = await lb(store, 'run', '--image', 'base', '--memory', '64M', GUEST);
    expect(r).toMatchObject({ code: 1, stdout: 'memory.grow failed\n' });
  });
});

describe('WasiHost over a 2 GiB + 64 KiB memory, called as a guest would', () => {
  const HIGH = 2 ** 31 + 4096;
  /** The i32 a guest passes for an address above 2 GiB arrives in JS as a negative number. */
  const i32 = (n: number) => n | 0;
  let memory: WebAssembly.Memory;
  beforeAll(() => {
    memory = new WebAssembly.Memory({ initial: 32769, maximum: 65536 });
  });

  function host(fds: (Fd | undefined)[]): WasiHost {
    const h = new WasiHost({ args: ['a'], fds });
    h.initialize({ exports: { memory } });
    return h;
  }

  it('writes from high memory and reports through a high pointer', () => {
    const got: string[] = [];
    const out = new OutputFd((b) => got.push(new TextDecoder().decode(b)));
    const h = host([undefined, out]);
    const u8 = new Uint8Array(memory.buffer);
    const dv = new DataView(memory.buffer);
    u8.set(new TextEncoder().encode('from the top'), HIGH + 64);
    dv.setUint32(HIGH, HIGH + 64, true);
    dv.setUint32(HIGH + 4, 12, true);
    expect(h.wasiImport.fd_write!(1, i32(HIGH), 1, i32(HIGH + 16))).toBe(Errno.SUCCESS);
    expect(got).toEqual(['from the top']);
    expect(dv.getUint32(HIGH + 16, true)).toBe(12);
    const end = memory.buffer.byteLength;
    expect(h.wasiImport.random_get!(i32(end - 4), 8)).toBe(Errno.FAULT);
    expect(h.wasiImport.fd_write!(1, i32(end - 4), 1, i32(HIGH + 16))).toBe(Errno.FAULT);
    expect(h.wasiImport.poll_oneoff!(i32(HIGH), i32(HIGH), -1, i32(HIGH))).toBe(Errno.FAULT);
    expect(got).toHaveLength(1);
  });

  it('turns an unexpected host exception into EIO, but lets proc_exit through', () => {
    class Broken extends Fd {
      override fd_write(): never {
        throw new TypeError('host bug');
      }
    }
    const h = host([undefined, new Broken()]);
    const dv = new DataView(memory.buffer);
    dv.setUint32(HIGH, HIGH + 64, true);
    dv.setUint32(HIGH + 4, 1, true);
    expect(h.wasiImport.fd_write!(1, i32(HIGH), 1, i32(HIGH + 16))).toBe(Errno.IO);
    expect(() => h.wasiImport.proc_exit!(3)).toThrow(WasiExit);
  });
});
