import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, importBundle, memoryStore, readTar, writeTar } from '../src/index.js';
import { storeWithImage, text } from './helpers.js';

const exec = promisify(execFile);
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-bundle-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('bundles: images and boxes as one file', () => {
  it('carries an image with its tags and a box with its changes into another store', async () => {
    const a = await storeWithImage({ 'etc/motd': 'hello', 'data/x': 'x' });
    const box = await a.createBox('work', { image: 'base' });
    box.fs.writeFile('/data/new.txt', 'made in a');
    box.fs.unlink('/data/x');
    await box.flush();
    const bytes = await exportBundle(a, { images: ['base'], boxes: ['work'] });

    const b = memoryStore({ chunkSize: 8 });
    const idx = await importBundle(b, bytes);
    expect(idx.images.map((i) => i.tags)).toEqual([['base:latest']]);
    expect(idx.boxes.map((x) => x.name)).toEqual(['work']);
    const again = await b.openBox('work');
    expect(text(again.fs.readFile('/data/new.txt'))).toBe('made in a');
    expect(again.diff()).toEqual(box.diff());
    expect((await b.inspectImage('base')).digest).toBe((await a.inspectImage('base')).digest);
    expect((await b.fsck()).problems).toEqual([]);
    // Opening it twice: the box name is taken, nothing changes.
    await expect(importBundle(b, bytes)).rejects.toThrow(expect.objectContaining({ code: 'ALREADY_EXISTS', message: expect.stringMatching(/box work already exists/) }));
  });

  it('refuses tampered blobs, missing blobs and unknown versions', async () => {
    const a = await storeWithImage({ f: 'content' });
    const bytes = await exportBundle(a, { images: ['base'] });
    const entries = readTar(bytes);
    const blob = entries.find((e) => e.path.startsWith('blobs/') && e.data && text(e.data) === 'content')!;
    const tampered = writeTar(entries.map((e) => (e === blob ? { ...e, data: new TextEncoder().encode('CONTENT') } : e)));
    await expect(importBundle(memoryStore({ chunkSize: 8 }), tampered)).rejects.toThrow(expect.objectContaining({ code: 'CORRUPT', message: expect.stringMatching(/does not match its digest/) }));
    const holes = writeTar(entries.filter((e) => e !== blob));
    const c = memoryStore({ chunkSize: 8 });
    await expect(importBundle(c, holes)).rejects.toThrow(expect.objectContaining({ code: 'CORRUPT', message: expect.stringMatching(/missing blob/) }));
    expect(await c.listImages()).toEqual([]);
    const v2 = writeTar(entries.map((e) => (e.path === 'layerbox-bundle.json' ? { ...e, data: new TextEncoder().encode(text(e.data!).replace('"version":1', '"version":2')) } : e)));
    await expect(importBundle(memoryStore({ chunkSize: 8 }), v2)).rejects.toThrow(expect.objectContaining({ code: 'INVALID', message: expect.stringMatching(/unsupported layerbox bundle version 2/) }));
  });

  it('round-trips through the CLI: export IMAGE --box BOX -o FILE, then import FILE', async () => {
    const cli = resolve('dist/cli.js');
    if (!existsSync(cli)) await exec('node', ['esbuild.config.mjs']);
    const run = (store: string, ...a: string[]) => exec(process.execPath, [cli, '--store', store, ...a]);
    await writeFile(join(tmp, 'f.txt'), 'shared');
    await exec('mkdir', ['-p', join(tmp, 'tree')]);
    await writeFile(join(tmp, 'tree/readme'), 'tree');
    const s1 = join(tmp, 's1'), s2 = join(tmp, 's2');
    await run(s1, 'image', 'import', join(tmp, 'tree'), '--tag', 'app:1');
    await run(s1, 'box', 'create', 'dev', '--image', 'app:1');
    await run(s1, 'cp', join(tmp, 'f.txt'), 'dev:/f.txt');
    await run(s1, 'export', 'app:1', '--box', 'dev', '-o', join(tmp, 'share.lbx'));
    const r = await run(s2, 'import', join(tmp, 'share.lbx'));
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64} app:1\nbox dev\n$/);
    expect((await run(s2, 'cat', 'dev:/f.txt')).stdout).toBe('shared');
    expect((await run(s2, 'diff', 'dev')).stdout).toBe('A /f.txt\n');
    expect((await readFile(join(tmp, 'share.lbx'))).length).toBeGreaterThan(0);
  });
});
