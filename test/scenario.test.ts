import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../runtime/node/index.js';
import { makeTree } from './fixtures.js';

const dec = new TextDecoder();
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-scenario-'));
  await makeTree(join(tmp, 'tree'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('image, box, diff, commit through the library (directory store)', () => {
  it('follows the docker run / diff / commit flow', async () => {
    const store = await openStore(join(tmp, 'store'));
    const base = await store.importDirectory(join(tmp, 'tree'), { tag: 'base' });
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/);
    const b1 = await store.createBox('b1', { image: 'base' });
    const fs = b1.fs;
    fs.writeFile('/etc/config.txt', 'mode=fast\n');
    fs.unlink('/etc/remove-me');
    fs.unlink('/cache/old/x.bin');
    fs.rmdir('/cache/old');
    fs.unlink('/cache/y.bin');
    fs.rmdir('/cache');
    fs.mkdir('/cache');
    fs.rename('/data', '/srv');
    expect(b1.diff().map((c) => `${c.kind} ${c.path}`)).toEqual([
      'C /cache',
      'D /cache/old',
      'D /cache/y.bin',
      'D /data',
      'C /etc',
      'C /etc/config.txt',
      'D /etc/remove-me',
      'A /srv',
      'A /srv/a.txt',
      'A /srv/sub',
      'A /srv/sub/b.txt',
    ]);
    await b1.flush();
    await store.backend.close();

    // A new process (a new store object) sees the persisted box.
    const store2 = await openStore(join(tmp, 'store'));
    const again = await store2.openBox('b1');
    expect(again.diff()).toEqual(b1.diff());
    const v2 = await again.commit({ tag: 'base:v2', message: 'fast mode, data moved' });
    expect(again.diff()).toEqual([]);
    const hist = await store2.history('base:v2');
    expect(hist.length).toBe(2);
    expect(hist[0]!.comment).toBe('fast mode, data moved');
    expect((await store2.inspectImage('base:v2')).digest).toBe(v2);

    const onV2 = await store2.createBox('b2', { image: 'base:v2' });
    expect(dec.decode(onV2.fs.readFile('/etc/config.txt'))).toBe('mode=fast\n');
    expect(dec.decode(onV2.fs.readFile('/srv/sub/b.txt'))).toBe('beta\n');
    expect(onV2.fs.exists('/data')).toBe(false);
    expect(onV2.fs.readdir('/cache')).toEqual([]);
    expect(onV2.fs.exists('/etc/remove-me')).toBe(false);

    const onBase = await store2.createBox('b3', { image: 'base' });
    expect(dec.decode(onBase.fs.readFile('/etc/config.txt'))).toBe('mode=slow\n');
    expect(dec.decode(onBase.fs.readFile('/data/a.txt'))).toBe('alpha\n');
    expect(onBase.fs.readdir('/cache').map((e) => e.name)).toEqual(['old', 'y.bin']);
    expect(onBase.diff()).toEqual([]);

    // reset and fork
    onBase.fs.writeFile('/new.txt', 'n');
    const forked = await onBase.fork('b4');
    expect(dec.decode(forked.fs.readFile('/new.txt'))).toBe('n');
    await onBase.reset();
    expect(onBase.fs.exists('/new.txt')).toBe(false);
    expect((await store2.openBox('b3')).fs.exists('/new.txt')).toBe(false);
    expect((await store2.openBox('b4')).fs.exists('/new.txt')).toBe(true);
    expect((await store2.fsck()).problems).toEqual([]);
    await store2.backend.close();
  });
});
