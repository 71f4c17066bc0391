import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Errno, WasiHost } from '../../src/index.js';
import { MAX_FDS } from '../../src/wasi/defs.js';
import { Fd } from '../../src/wasi/fd.js';
import { CLI, lb, makeTree } from '../fixtures.js';

const GUEST = resolve('test/attack/guests/build/fds_table.wasm');
let tmp: string;
let store: string;

beforeAll(async () => {
  if (!existsSync(CLI)) await promisify(execFile)(process.execPath, ['esbuild.config.mjs']);
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-fd-table-'));
  store = join(tmp, 'store');
  await makeTree(join(tmp, 'tree'));
  expect((await lb(store, 'image', 'import', join(tmp, 'tree'), '--tag', 'base')).code).toBe(0);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('the fd table against a guest that opens fds forever', () => {
  it('stops it at the limit with EMFILE and hands back the lowest free number', async () => {
    const r = await lb(store, 'run', '--image', 'base', GUEST);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // stdio 0-2, the preopen 3, the guest's own file 4: the filled table runs 5 .. MAX_FDS - 1.
    const first = 5, last = MAX_FDS - 1, n = last - first + 1;
    expect(r.stdout.split('\n')).toEqual([
      'stop EMFILE',
      `opened ${n} first ${first} last ${last}`,
      'reuse lowest first',
      'full again EMFILE',
      'renumber 0 target reads ok, source slot reused yes',
      `renumber to a closed fd ${Errno.BADF}`,
      'closed all, 0 failures',
      'close again EBADF',
      `cycles 100000 of 100000 got fd ${first}`,
      'stop EMFILE',
      `refilled ${n} first ${first} last ${last}`,
      '',
    ]);
  });
});

describe('host memory of a full fd table', () => {
  it('stays bounded: measured in a child process while the guest holds every fd it can', async () => {
    // The child runs the guest on the calling thread and samples its RSS when the guest reports the table full.
    const script = `
      const lib = await import(${JSON.stringify(resolve('dist/node.js'))});
      const { readFileSync } = await import('node:fs');
      const store = lib.memoryStore();
      await store.importLayer(async (b) => b.addDir('/etc'), { tag: 'base' });
      const box = await store.ephemeralBox('base');
      const mod = new WebAssembly.Module(readFileSync(${JSON.stringify(GUEST)}));
      gc();
      const before = process.memoryUsage().rss;
      let full = 0;
      const r = lib.runModule(mod, [{ guest: '/', fs: box.fs }], { stdout: (b) => {
        if (!full && new TextDecoder().decode(b).startsWith('opened')) { gc(); full = process.memoryUsage().rss; }
      } });
      console.log(JSON.stringify({ exit: r.exitCode, before, full }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', script]);
    const m = JSON.parse(stdout) as { exit: number; before: number; full: number };
    expect(m.exit).toBe(0);
    expect(m.full).toBeGreaterThan(0);
    // About 45 MiB for 65,531 open fds over an in-memory box; the bound is what matters.
    expect(m.full - m.before).toBeLessThan(256 << 20);
  });
});

/** An fd whose path_open hands out new fds: enough to drive the table. */
class Opener extends Fd {
  override path_open() {
    return { ret: Errno.SUCCESS, fd_obj: new Opener() as Fd };
  }
}

describe('the free list', () => {
  it('gives the same numbers as a lowest-free scan over random opens, closes and renumbers', () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const dv = new DataView(memory.buffer);
    const limit = 64;
    const h = new WasiHost({ fds: [undefined, undefined, undefined, new Opener()], maxFds: limit });
    h.initialize({ exports: { memory } });
    const w = h.wasiImport;
    // The model: slots >= 3, lowest free first, at most `limit` slots.
    const model: boolean[] = [true, true, true, true];
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const open = () => model.findIndex((used, i) => i >= 3 && !used);
    for (let step = 0; step < 20000; step++) {
      const op = rand(3);
      if (op === 0) {
        let want = open();
        if (want < 0) want = model.length < limit ? model.length : -1;
        const r = w.path_open!(3, 0, 0, 1, 0, 0n, 0n, 0, 8);
        if (want < 0) expect(r).toBe(Errno.MFILE);
        else {
          expect(r).toBe(Errno.SUCCESS);
          expect(dv.getUint32(8, true)).toBe(want);
          model[want] = true;
        }
      } else if (op === 1) {
        const fd = 4 + rand(limit);
        expect(w.fd_close!(fd)).toBe(model[fd] ? Errno.SUCCESS : Errno.BADF);
        if (model[fd]) model[fd] = false;
      } else {
        const from = 4 + rand(limit), to = 4 + rand(limit);
        expect(w.fd_renumber!(from, to)).toBe(model[from] && model[to] ? Errno.SUCCESS : Errno.BADF);
        if (model[from] && model[to] && from !== to) model[from] = false;
      }
    }
  });

  it('refuses an open at the limit before the fd underneath is asked to open anything', () => {
    let opened = 0;
    class Counting extends Fd {
      override path_open() {
        opened++;
        return { ret: Errno.SUCCESS, fd_obj: new Opener() as Fd };
      }
    }
    const memory = new WebAssembly.Memory({ initial: 1 });
    const h = new WasiHost({ fds: [undefined, undefined, undefined, new Counting()], maxFds: 5 });
    h.initialize({ exports: { memory } });
    expect(h.wasiImport.path_open!(3, 0, 0, 1, 1, 0n, 0n, 0, 8)).toBe(Errno.SUCCESS);
    expect(h.wasiImport.path_open!(3, 0, 0, 1, 1, 0n, 0n, 0, 8)).toBe(Errno.MFILE);
    expect(opened).toBe(1);
  });
});
