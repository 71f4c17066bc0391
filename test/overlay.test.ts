import { describe, expect, it } from 'vitest';
import { Errno, decodeLayer, encodeLayer, memoryStore } from '../src/index.js';
import { bytes, code, storeWithImage, text } from './helpers.js';

describe('sandbox path resolution', () => {
  it('keeps symlinks and .. inside the root', async () => {
    const store = await storeWithImage({ 'etc/passwd': 'root:x:0:0', 'a/b': null, 'a/abs': { symlink: '/etc' }, 'a/up': { symlink: '../../../../etc' }, 'loop1': { symlink: 'loop2' }, 'loop2': { symlink: 'loop1' }, 'chain1': { symlink: 'chain2' }, 'chain2': { symlink: '/a/abs/passwd' } });
    const fs = (await store.createBox('b', { image: 'base' })).fs;
    expect(text(fs.readFile('/a/abs/passwd'))).toBe('root:x:0:0');
    expect(text(fs.readFile('/a/up/passwd'))).toBe('root:x:0:0');
    expect(text(fs.readFile('/../../../etc/passwd'))).toBe('root:x:0:0');
    expect(text(fs.readFile('a/b/../../etc/passwd'))).toBe('root:x:0:0');
    expect(text(fs.readFile('/chain1'))).toBe('root:x:0:0');
    expect(code(() => fs.readFile('/loop1'))).toBe('ELOOP');
    expect(code(() => fs.stat('/loop1/x'))).toBe('ELOOP');
    expect(fs.lstat('/loop1').type).toBe('symlink');
    expect(code(() => fs.stat('/etc/passwd\0x'))).toBe('EINVAL');
    expect(code(() => fs.writeFile('/' + 'n'.repeat(256), 'x'))).toBe('ENAMETOOLONG');
    expect(code(() => fs.stat('/etc/passwd/x'))).toBe('ENOTDIR');
    expect(code(() => fs.stat('/etc/passwd/'))).toBe('ENOTDIR');
    // Writing through an absolute symlink lands in the box, never on the host.
    fs.symlink('/tmp-target', '/to-host');
    fs.writeFile('/to-host', 'inside');
    expect(text(fs.readFile('/tmp-target'))).toBe('inside');
    expect(code(() => fs.rmdir('/'))).toBe('EBUSY');
    expect(code(() => fs.rename('/a', '/a/b/c'))).toBe('EINVAL');
  });
});

describe('inodes, links and times', () => {
  it('keeps inode numbers across copy-up, rename, flush and reopen', async () => {
    const store = await storeWithImage({ 'd/f': 'content of f', 'd/g': 'g' });
    const box = await store.createBox('b', { image: 'base' });
    const fs = box.fs;
    const ino = fs.stat('/d/f').ino;
    const dino = fs.stat('/d').ino;
    fs.pwrite('/d/f', 0, bytes('C'));
    expect(fs.stat('/d/f').ino).toBe(ino);
    fs.rename('/d', '/e');
    expect(fs.stat('/e').ino).toBe(dino);
    expect(fs.stat('/e/f').ino).toBe(ino);
    const gino = fs.stat('/e/g').ino;
    fs.rename('/e/g', '/g2');
    expect(fs.stat('/g2').ino).toBe(gino);
    await box.flush();
    const fs2 = (await store.openBox('b')).fs;
    expect(fs2.stat('/e/f').ino).toBe(ino);
    expect(fs2.stat('/e').ino).toBe(dino);
    expect(fs2.stat('/g2').ino).toBe(gino);
    expect(text(fs2.readFile('/e/f'))).toBe('Content of f');
    const st = fs2.stat('/e/f');
    expect(st.nlink).toBe(1);
    expect(st.size).toBe(12);
    expect(fs2.stat('/').nlink).toBe(3);
  });

  it('copies a hard-link group up together and commits it as a link', async () => {
    const store = await storeWithImage({ 'x/data': 'shared' });
    const b = await store.createBox('b', { image: 'base' });
    b.fs.link('/x/data', '/x/alias');
    b.fs.link('/x/data', '/top');
    await b.commit({ tag: 'base:linked' });
    const box = await store.createBox('c', { image: 'base:linked' });
    const fs = box.fs;
    expect(fs.stat('/x/alias').nlink).toBe(3);
    fs.rename('/x', '/y');
    fs.writeFile('/top', 'changed');
    expect(text(fs.readFile('/y/data'))).toBe('changed');
    expect(text(fs.readFile('/y/alias'))).toBe('changed');
    expect(fs.stat('/y/data').ino).toBe(fs.stat('/top').ino);
    fs.unlink('/y/alias');
    expect(fs.stat('/top').nlink).toBe(2);
    await box.commit({ tag: 'base:linked2' });
    const img = await store.inspectImage('base:linked2');
    const t = await store.layerTable(img.layers.at(-1)!.digest);
    const types = Object.fromEntries(t.entries.map((e) => [e.path, e.type]));
    expect([types['top'], types['y/data']].sort()).toEqual(['file', 'hardlink']);
    const fresh = (await store.createBox('d', { image: 'base:linked2' })).fs;
    expect(fresh.stat('/top').ino).toBe(fresh.stat('/y/data').ino);
    expect(fresh.exists('/y/alias')).toBe(false);
  });

  it('records nanosecond times; writes change mtime, chmod changes ctime only', async () => {
    const store = await storeWithImage({ f: 'x' });
    const fs = (await store.createBox('b', { image: 'base' })).fs;
    fs.utimes('/f', 1_600_000_000_123_456_789n, 1_600_000_001_987_654_321n);
    let st = fs.stat('/f');
    expect(st.atime).toBe(1_600_000_000_123_456_789n);
    expect(st.mtime).toBe(1_600_000_001_987_654_321n);
    fs.chmod('/f', 0o600);
    st = fs.stat('/f');
    expect(st.mode).toBe(0o600);
    expect(st.mtime).toBe(1_600_000_001_987_654_321n);
    expect(st.ctime).toBeGreaterThan(st.mtime);
    fs.pwrite('/f', 5, bytes('y'));
    expect(fs.stat('/f').mtime).toBeGreaterThan(1_600_000_001_987_654_321n);
    expect(Array.from(fs.readFile('/f'))).toEqual([120, 0, 0, 0, 0, 121]);
  });
});

describe('merged directories', () => {
  it('rmdir then mkdir gives an opaque directory; readdir resumes after a name without repeats', async () => {
    const store = await storeWithImage({ 'd/a': 'a', 'd/b': 'b', 'd/c': 'c' });
    const fs = (await store.createBox('b', { image: 'base' })).fs;
    const first = fs.readdir('/d').slice(0, 2).map((e) => e.name);
    expect(first).toEqual(['a', 'b']);
    fs.unlink('/d/a');
    fs.writeFile('/d/aa', 'new before the cursor');
    fs.writeFile('/d/z', 'new after the cursor');
    expect(fs.readdir('/d', 'b').map((e) => e.name)).toEqual(['c', 'z']);
    for (const n of ['aa', 'b', 'c', 'z']) fs.unlink(`/d/${n}`);
    fs.rmdir('/d');
    fs.mkdir('/d');
    expect(fs.readdir('/d')).toEqual([]);
    fs.writeFile('/d/b', 'fresh');
    expect(fs.readdir('/d').map((e) => e.name)).toEqual(['b']);
    expect(text(fs.readFile('/d/b'))).toBe('fresh');
  });

  it('renames a large lower directory in O(1): the upper stays a handful of entries', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) files[`big/sub${i % 50}/f${i}`] = `file ${i}`;
    const store = await storeWithImage(files, { chunkSize: 64 });
    const box = await store.createBox('b', { image: 'base' });
    box.fs.rename('/big', '/moved');
    box.fs.rename('/moved/sub7', '/sub7');
    expect(text(box.fs.readFile('/moved/sub3/f103'))).toBe('file 103');
    expect(text(box.fs.readFile('/sub7/f57'))).toBe('file 57');
    expect(box.fs.exists('/big')).toBe(false);
    await box.flush();
    const rec = await store.boxRecord('b');
    const upper = decodeLayer(await store.backend.getBlob(rec.upper!), 'upper');
    expect(upper.entries.length).toBeLessThanOrEqual(6);
    const again = await store.openBox('b');
    expect(text(again.fs.readFile('/moved/sub3/f103'))).toBe('file 103');
    expect(again.fs.readdir('/moved').length).toBe(49);
  });

  it('squashes an image into one layer with the same view', async () => {
    const store = await storeWithImage({ 'a/x': 'x', 'a/y': 'y', keep: 'k' });
    const b = await store.createBox('b', { image: 'base' });
    b.fs.unlink('/a/x');
    b.fs.rename('/a', '/b');
    b.fs.link('/keep', '/b/keep2');
    await b.commit({ tag: 'base:two' });
    const sq = await store.squash('base:two', { tag: 'base:flat' });
    const m = await store.inspectImage(sq);
    expect(m.layers.length).toBe(1);
    const fs = (await store.createBox('s', { image: 'base:flat' })).fs;
    expect(fs.readdir('/').map((e) => e.name)).toEqual(['b', 'keep']);
    expect(fs.readdir('/b').map((e) => e.name)).toEqual(['keep2', 'y']);
    expect(fs.stat('/keep').nlink).toBe(2);
  });
});

describe('layer format', () => {
  it('refuses unknown versions, truncation and unsorted tables with a clear error', async () => {
    const t = { kind: 'layer' as const, chunkSize: 8, entries: [{ path: '', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, mtime: 0n }, { path: 'a', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 5n, size: 0, chunks: new Map() }] };
    const enc = encodeLayer(t);
    expect(decodeLayer(enc, 'x').entries).toEqual(t.entries);
    const v2 = enc.slice();
    v2[8] = 2;
    expect(() => decodeLayer(v2, 'layer sha256:abc')).toThrow(/layer sha256:abc: unsupported LBXLAYER version 2/);
    expect(() => decodeLayer(enc.slice(0, enc.length - 3), 'L')).toThrow(/L: truncated/);
    const bad = encodeLayer({ ...t, entries: [t.entries[0]!, { ...t.entries[1]!, path: '../etc' }] });
    expect(() => decodeLayer(bad, 'L')).toThrow(/bad path/);
    const junk = new Uint8Array(40);
    expect(() => decodeLayer(junk, 'L')).toThrow(/not a LBXLAYER/);
    expect(Errno.NOENT).toBe(44);
  });
});

describe('regressions found by fuzzing', () => {
  it('a table whose magic is not valid UTF-8 is refused with a clear error', () => {
    const bytes = Uint8Array.from([0, 128, 66, 88, 76, 65, 89, 69, 82, 1, 0, 0, 0]);
    expect(() => decodeLayer(bytes, 'layer x')).toThrow(/layer x: not a LBXLAYER/);
  });
});

describe('layers stored as trees of directory pages', () => {
  it('a layer naming one page under itself again and again (a directory bomb) is refused, not expanded', async () => {
    const { encodePage, encodeRoot, readLayerTable, MAX_LAYER_ENTRIES } = await import('../src/layer-tree.js');
    const { digestOf } = await import('../src/digest.js');
    const pages = new Map<string, Uint8Array>();
    const put = (b: Uint8Array) => (pages.set(digestOf(b), b), digestOf(b));
    const meta = { mode: 0o755, uid: 0, gid: 0, mtime: 0n };
    // Ten files; then eight levels of ten directories that all name the level below: 10^9 entries if expanded.
    let page = put(encodePage(Array.from({ length: 10 }, (_, i) => ({ name: `f${i}`, type: 'file' as const, ...meta, size: 0, chunks: new Map() }))));
    for (let level = 0; level < 8; level++) page = put(encodePage(Array.from({ length: 10 }, (_, i) => ({ name: `d${i}`, type: 'dir' as const, ...meta, page }))));
    const root = (entries: number) => encodeRoot({ chunkSize: 8, entries, root: { ...meta, opaque: false }, page, redirects: [] });
    const get = async (d: string) => pages.get(d)!;
    await expect(readLayerTable(root(1000), 'bomb', get as never)).rejects.toThrow(/bomb: the layer says 1000 entries, its pages hold more/);
    await expect(readLayerTable(root(MAX_LAYER_ENTRIES + 1), 'bomb', get as never)).rejects.toThrow(/at most 4000000/);
    // The store refuses it when a bundle brings it, before any tag points at it.
    const store = memoryStore({ chunkSize: 8 });
    await store.backend.putBlobs([...pages].map(([d, data]) => ({ digest: d as never, data })));
    const layer = root(2000);
    await store.backend.putBlobs([{ digest: digestOf(layer), data: layer }]);
    await expect(store.layerTable(digestOf(layer))).rejects.toThrow(/pages hold more/);
  });
});
