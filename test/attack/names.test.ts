/**
 * Names a user picks are data, never keys into JavaScript's own objects: a
 * box or an image named like a property every object has (`constructor`,
 * `toString`, `hasOwnProperty`) is an ordinary name.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTree } from '../fixtures.js';
import { cli } from './cli-run.js';

let tmp: string;
let store: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-names-'));
  store = join(tmp, 'store');
  await makeTree(join(tmp, 'tree'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('names that every JavaScript object has', () => {
  it('are ordinary box and image names', async () => {
    const ok = async (...argv: string[]) => {
      const r = await cli(store, ...argv);
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    await ok('image', 'import', join(tmp, 'tree'), '--tag', 'constructor');
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      const missing = await cli(store, 'diff', name);
      expect(missing.stderr).toBe(`layerbox: no such box: ${name}\n`);
      await ok('box', 'create', name, '--image', 'constructor');
      expect(await ok('cat', `${name}:/etc/config.txt`)).toBe('mode=slow\n');
    }
    expect((await ok('box', 'ls')).split('\n').filter(Boolean).length).toBe(5); // a header and four boxes
    await ok('box', 'fork', 'constructor', 'toString2');
    await ok('box', 'rm', 'valueOf');
    expect((await cli(store, 'box', 'rm', 'valueOf')).stderr).toBe('layerbox: no such box: valueOf\n');
    expect(await ok('fsck')).toMatch(/^ok/m);
  });
});
