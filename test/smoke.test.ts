import { describe, expect, it } from 'vitest';
import { bytes, storeWithImage, text } from './helpers.js';

describe('overlay smoke', () => {
  it('reads, writes, deletes, renames over an image', async () => {
    const store = await storeWithImage({ 'etc/hosts': 'localhost here', 'data/a.txt': 'aaaaaaaaaaaaaaaaaaaa', 'data/sub/b.txt': 'b', 'gone/x': 'x' });
    const box = await store.createBox('b1', { image: 'base' });
    const fs = box.fs;
    expect(text(fs.readFile('/etc/hosts'))).toBe('localhost here');
    fs.pwrite('/data/a.txt', 9, bytes('Z'));
    expect(text(fs.readFile('/data/a.txt'))).toBe('aaaaaaaaaZaaaaaaaaaa');
    fs.unlink('/gone/x');
    fs.rmdir('/gone');
    fs.mkdir('/gone');
    fs.rename('/data', '/data2');
    expect(fs.readdir('/').map((e) => e.name)).toEqual(['data2', 'etc', 'gone']);
    expect(text(fs.readFile('/data2/sub/b.txt'))).toBe('b');
    expect(fs.readdir('/gone')).toEqual([]);
    expect(box.diff()).toEqual([
      { kind: 'D', path: '/data' },
      { kind: 'A', path: '/data2' },
      { kind: 'A', path: '/data2/a.txt' },
      { kind: 'A', path: '/data2/sub' },
      { kind: 'A', path: '/data2/sub/b.txt' },
      { kind: 'C', path: '/gone' },
      { kind: 'D', path: '/gone/x' },
    ]);
    await box.flush();
    const again = await store.openBox('b1');
    expect(again.diff()).toEqual(box.diff());
    expect(text(again.fs.readFile('/data2/a.txt'))).toBe('aaaaaaaaaZaaaaaaaaaa');
    const img = await again.commit({ tag: 'base:v2', message: 'changes' });
    expect((await store.history('base:v2')).length).toBe(2);
    const b2 = await store.createBox('b2', { image: 'base:v2' });
    expect(b2.fs.readdir('/').map((e) => e.name)).toEqual(['data2', 'etc', 'gone']);
    expect(text(b2.fs.readFile('/data2/a.txt'))).toBe('aaaaaaaaaZaaaaaaaaaa');
    const b3 = await store.createBox('b3', { image: 'base' });
    expect(b3.fs.readdir('/').map((e) => e.name)).toEqual(['data', 'etc', 'gone']);
    expect(img).toMatch(/^sha256:/);
  });
});
