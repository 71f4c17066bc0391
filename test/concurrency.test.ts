/**
 * Two CLI processes at once on one directory store and one image: each
 * copies into, runs in and commits its own box, both run throw-away boxes
 * over the shared image and contend for one shared box, while a third
 * process collects garbage. No commit may be lost, no blob corrupted; the
 * shared box is refused with a clear error while the other holds it, and
 * every write a process was told succeeded is there at the end.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../runtime/node/index.js';
import { lb as lbIn, makeTree } from './fixtures.js';

const GUEST = resolve('test/wasi/build/guest.wasm');
const ROUNDS = 6;

let tmp: string;
let store: string;
const lb = (...argv: string[]) => lbIn(store, ...argv);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-conc-'));
  store = join(tmp, 'store');
  await makeTree(join(tmp, 'tree'));
  expect((await lb('image', 'import', join(tmp, 'tree'), '--tag', 'base')).code).toBe(0);
  for (const b of ['A', 'B', 'shared']) expect((await lb('box', 'create', b, '--image', 'base')).code).toBe(0);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('two processes on one store', () => {
  it('commit and run at once: no lost commit, no corrupt blob, a busy box refused clearly', async () => {
    const committed = new Map<string, string>();
    const sharedWrites: string[] = [];
    let refused = 0;
    let gcDone = false;
    let gcRuns = 0;

    const actor = async (me: 'A' | 'B') => {
      for (let k = 0; k < ROUNDS; k++) {
        const host = join(tmp, `${me}-${k}.txt`);
        await writeFile(host, `${me} copied ${k}\n`);
        expect(await lb('cp', host, `${me}:/copied-${k}.txt`), 'cp').toMatchObject({ code: 0 });
        expect(await lb('run', '--box', me, GUEST, '--', 'write', `/ran-${k}.txt`, `${me} ran ${k}`), 'run').toMatchObject({ code: 0 });
        // A throw-away box over the image both share.
        expect(await lb('run', '--image', 'base', GUEST, '--', 'cat', '/etc/config.txt')).toMatchObject({ code: 0, stdout: 'mode=slow\n' });
        const c = await lb('commit', me, '--tag', `${me.toLowerCase()}:${k}`, '-m', `${me} round ${k}`);
        expect(c.stderr, 'commit').toBe('');
        expect(c.code).toBe(0);
        committed.set(`${me.toLowerCase()}:${k}`, c.stdout.trim());
        // The shared box: either this process gets it, or a clear refusal naming the holder.
        const s = await lb('run', '--box', 'shared', GUEST, '--', 'write', `/${me}-${k}.txt`, `${me} ${k}`);
        if (s.code === 0) sharedWrites.push(`${me}-${k}.txt`);
        else {
          expect(s.stderr).toMatch(/^layerbox: box shared is in use by process \d+\n$/);
          refused++;
        }
      }
    };
    const collector = async () => {
      while (!gcDone) {
        expect(await lb('gc'), 'gc').toMatchObject({ code: 0 });
        gcRuns++;
      }
    };
    const gc = collector();
    await Promise.all([actor('A'), actor('B')]);
    gcDone = true;
    await gc;

    expect((await lb('fsck')).code).toBe(0);
    const s = await openStore(store);
    try {
      const refs = await s.backend.readRefs();
      for (const [tag, digest] of committed) expect(refs.tags[tag], tag).toBe(digest);
      // Each commit holds everything its box had by then, read back through every blob.
      for (const me of ['A', 'B'])
        for (let k = 0; k < ROUNDS; k++) {
          const box = await s.ephemeralBox(`${me.toLowerCase()}:${k}`);
          for (let j = 0; j <= k; j++) {
            expect(new TextDecoder().decode(box.fs.readFile(`/copied-${j}.txt`))).toBe(`${me} copied ${j}\n`);
            expect(new TextDecoder().decode(box.fs.readFile(`/ran-${j}.txt`))).toBe(`${me} ran ${j}`);
          }
          expect(box.fs.exists(`/copied-${k + 1}.txt`)).toBe(false);
          expect(new TextDecoder().decode(box.fs.readFile('/etc/config.txt'))).toBe('mode=slow\n');
        }
      const shared = (await s.openBox('shared')).fs.readdir('/').map((e) => e.name).filter((n) => /^[AB]-\d+\.txt$/.test(n));
      expect(shared.sort()).toEqual(sharedWrites.sort());
      expect(sharedWrites.length + refused).toBe(2 * ROUNDS);
      expect(sharedWrites.length).toBeGreaterThan(0);
      expect(gcRuns).toBeGreaterThan(2);
      console.log(`${committed.size} commits, ${gcRuns} gc runs alongside; shared box: ${sharedWrites.length} runs, ${refused} refused`);
    } finally {
      await s.backend.close();
    }
  });
});
