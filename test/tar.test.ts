import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { lb } from './fixtures.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerboxError, type NodeStore, openStore } from '../runtime/node/index.js';

const exec = promisify(execFile);
const CLI = resolve('dist/cli.js');
let tmp: string;

type TarEntry = Partial<tar.Header> & { name: string; body?: string | Buffer };

/** A tar archive made with tar-stream, as another tool would write it. */
async function tarball(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { body, ...h } of entries) {
    if (body === undefined) pack.entry(h);
    else pack.entry(h, body);
  }
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

let n = 0;
async function tarFile(data: Buffer, ext = '.tar'): Promise<string> {
  const f = join(tmp, `t${n++}${ext}`);
  await writeFile(f, data);
  return f;
}


const MTIME = new Date('2021-03-04T05:06:07Z');
const secs = (d: Date) => BigInt(d.getTime() / 1000) * 1_000_000_000n;
const BIG = randomBytes(200 * 1024 + 123);
// A run of zeros inside the big file (stored as a hole, must still read back as zeros).
BIG.fill(0, 70 * 1024, 140 * 1024);

/** A small root filesystem with every kind of entry the importer keeps. */
function rootfs(): TarEntry[] {
  return [
    { name: './', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: './etc/', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: './etc/hosts', body: '127.0.0.1 localhost\n', mode: 0o644, mtime: MTIME },
    { name: './etc/secret', body: 'hunter2\n', mode: 0o600, uid: 1000, gid: 1000, mtime: new Date('2020-01-01T00:00:01Z') },
    { name: './srv/', type: 'directory', mode: 0o700, mtime: new Date('2019-06-07T08:09:10Z') },
    { name: './bin/', type: 'directory', mode: 0o755, mtime: MTIME },
    { name: './bin/tool', body: '#!/bin/sh\necho hi\n', mode: 0o755, mtime: MTIME },
    { name: './bin/tool-alias', type: 'link', linkname: './bin/tool', mtime: MTIME },
    { name: './bin/sh', type: 'symlink', linkname: '../usr/bin/busybox', mtime: MTIME },
    { name: './bin/abs', type: 'symlink', linkname: '/etc/hosts', mtime: MTIME },
    { name: './bin/dangling', type: 'symlink', linkname: 'no/such/../thing', mtime: MTIME },
    // No entries for /deep or /deep/a: the importer makes them.
    { name: 'deep/a/b.txt', body: 'deep\n', mode: 0o644, mtime: MTIME },
    { name: 'data/big.bin', body: BIG, mode: 0o644, mtime: MTIME },
    { name: 'data/empty', body: '', mode: 0o644, mtime: MTIME },
  ];
}

async function tags(store: NodeStore): Promise<string[]> {
  return (await store.listImages()).flatMap((i) => i.tags).sort();
}

beforeAll(async () => {
  if (!existsSync(CLI)) await exec(process.execPath, ['esbuild.config.mjs']);
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-tar-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('tar import (library)', () => {
  let store: NodeStore;
  beforeAll(async () => {
    store = await openStore(join(tmp, 'lib-store'));
  });
  afterAll(() => store.backend.close());

  for (const gz of [false, true]) {
    it(`imports a ${gz ? 'gzip' : 'plain'} tar: files, dirs, symlinks, hard links, times and modes`, async () => {
      const raw = await tarball(rootfs());
      const file = await tarFile(gz ? gzipSync(raw) : raw, gz ? '.tar.gz' : '.tar');
      const tag = gz ? 'root:gz' : 'root:plain';
      const digest = await store.importTar(file, { tag });
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(await tags(store)).toContain(tag);

      const box = await store.createBox(gz ? 'gz' : 'plain', { image: tag });
      const fs = box.fs;
      expect(fs.readdir('/').map((e) => e.name).sort()).toEqual(['bin', 'data', 'deep', 'etc', 'srv']);

      // files: content, mode, owner, mtime to the second
      expect(Buffer.from(fs.readFile('/etc/hosts')).toString()).toBe('127.0.0.1 localhost\n');
      const hosts = fs.stat('/etc/hosts');
      expect(hosts.type).toBe('file');
      expect(hosts.mode).toBe(0o644);
      expect(hosts.mtime).toBe(secs(MTIME));
      const secret = fs.stat('/etc/secret');
      expect(secret.mode).toBe(0o600);
      expect([secret.uid, secret.gid]).toEqual([1000, 1000]);
      expect(secret.mtime).toBe(secs(new Date('2020-01-01T00:00:01Z')));
      expect(fs.stat('/bin/tool').mode).toBe(0o755);
      expect(fs.stat('/data/empty').size).toBe(0);

      // directories keep their own metadata
      const srv = fs.stat('/srv');
      expect(srv.type).toBe('dir');
      expect(srv.mode).toBe(0o700);
      expect(srv.mtime).toBe(secs(new Date('2019-06-07T08:09:10Z')));
      expect(fs.readdir('/srv')).toEqual([]);

      // implicit parents
      expect(fs.stat('/deep').type).toBe('dir');
      expect(fs.stat('/deep/a').type).toBe('dir');
      expect(fs.stat('/deep/a').mode).toBe(0o755);
      expect(Buffer.from(fs.readFile('/deep/a/b.txt')).toString()).toBe('deep\n');

      // symlinks: targets verbatim, even dangling or absolute ones
      expect(fs.lstat('/bin/sh').type).toBe('symlink');
      expect(fs.readlink('/bin/sh')).toBe('../usr/bin/busybox');
      expect(fs.readlink('/bin/abs')).toBe('/etc/hosts');
      expect(fs.readlink('/bin/dangling')).toBe('no/such/../thing');
      // an absolute target resolves inside the box
      expect(Buffer.from(fs.readFile('/bin/abs')).toString()).toBe('127.0.0.1 localhost\n');

      // hard links: one inode, two names
      const a = fs.stat('/bin/tool'), b = fs.stat('/bin/tool-alias');
      expect(b.ino).toBe(a.ino);
      expect(a.nlink).toBe(2);
      expect(b.nlink).toBe(2);
      expect(Buffer.from(fs.readFile('/bin/tool-alias')).toString()).toBe('#!/bin/sh\necho hi\n');

      // a file spanning several 64 KiB chunks (with a hole) reads back byte-identical
      expect(fs.stat('/data/big.bin').size).toBe(BIG.length);
      expect(Buffer.from(fs.readFile('/data/big.bin')).equals(BIG)).toBe(true);
      expect(Buffer.from(fs.pread('/data/big.bin', 64 * 1024 - 10, 20)).equals(BIG.subarray(64 * 1024 - 10, 64 * 1024 + 10))).toBe(true);

      // "./" prefixes are gone from the stored table
      const m = await store.manifest(digest);
      const table = await store.layerTable(m.layers[0]!.digest);
      expect(table.entries.every((e) => !e.path.startsWith('.') && !e.path.startsWith('/'))).toBe(true);
      expect(table.entries.map((e) => e.path)).toContain('etc/hosts');
    });
  }

  it('gives the same image digest for the plain and gzip tar of the same content', async () => {
    const raw = await tarball([{ name: 'x', body: 'x\n', mtime: MTIME }]);
    const store2 = await openStore('memory:');
    const d1 = await store2.importTar(await tarFile(raw), {});
    const d2 = await store2.importTar(await tarFile(gzipSync(raw)), {});
    const t1 = await store2.layerTable((await store2.manifest(d1)).layers[0]!.digest);
    const t2 = await store2.layerTable((await store2.manifest(d2)).layers[0]!.digest);
    expect(t2).toEqual(t1);
  });

  it('turns OCI whiteouts into whiteouts and opaque markers', async () => {
    const file = await tarFile(
      await tarball([
        { name: 'etc/', type: 'directory', mtime: MTIME },
        { name: 'etc/.wh.passwd', body: '', mtime: MTIME },
        { name: 'etc/motd', body: 'hello\n', mtime: MTIME },
        // the usual order in OCI layers: the directory, then its opaque marker
        { name: 'var/', type: 'directory', mode: 0o750, mtime: MTIME },
        { name: 'var/cache/', type: 'directory', mode: 0o700, mtime: MTIME },
        { name: 'var/cache/.wh..wh..opq', body: '', mtime: MTIME },
        { name: 'var/cache/new', body: 'n\n', mtime: MTIME },
        // an opaque directory with no entry of its own
        { name: 'opt/.wh..wh..opq', body: '', mtime: MTIME },
        { name: '.wh.tmp', body: '', mtime: MTIME },
      ]),
    );
    const digest = await store.importTar(file, { tag: 'wh:1' });
    const table = await store.layerTable((await store.manifest(digest)).layers[0]!.digest);
    const byPath = new Map(table.entries.map((e) => [e.path, e]));
    expect(byPath.get('etc/passwd')?.type).toBe('whiteout');
    expect(byPath.get('tmp')?.type).toBe('whiteout');
    expect(byPath.get('var/cache')).toMatchObject({ type: 'dir', opaque: true, mode: 0o700 });
    expect(byPath.get('var')?.opaque).toBeFalsy();
    expect(byPath.get('opt')).toMatchObject({ type: 'dir', opaque: true });
    expect(byPath.get('var/cache/new')?.type).toBe('file');
    // the marker files themselves are not entries
    expect(table.entries.some((e) => e.path.includes('.wh.'))).toBe(false);

    const box = await store.createBox('wh', { image: 'wh:1' });
    expect(box.fs.exists('/etc/passwd')).toBe(false);
    expect(box.fs.readdir('/etc').map((e) => e.name)).toEqual(['motd']);
    expect(box.fs.readdir('/var/cache').map((e) => e.name)).toEqual(['new']);
    expect(box.fs.readdir('/opt')).toEqual([]);
  });

  it('imports an opaque marker that comes before its directory entry', async () => {
    const file = await tarFile(
      await tarball([
        { name: 'var/cache/.wh..wh..opq', body: '', mtime: MTIME },
        { name: 'var/cache/', type: 'directory', mode: 0o700, mtime: MTIME },
      ]),
    );
    const digest = await store.importTar(file, { tag: 'wh:2' });
    const table = await store.layerTable((await store.manifest(digest)).layers[0]!.digest);
    expect(table.entries.find((e) => e.path === 'var/cache')).toMatchObject({ type: 'dir', opaque: true, mode: 0o700, mtime: secs(MTIME) });
  });

  it('keeps the last entry of a tar that lacks the end-of-archive blocks', async () => {
    const raw = await tarball([
      { name: 'a.txt', body: 'a\n', mtime: MTIME },
      { name: 'z-empty', body: '', mtime: MTIME },
    ]);
    const file = await tarFile(raw.subarray(0, raw.length - 1024));
    const digest = await store.importTar(file, {});
    const table = await store.layerTable((await store.manifest(digest)).layers[0]!.digest);
    expect(table.entries.map((e) => e.path)).toEqual(['', 'a.txt', 'z-empty']);
  });
});

/** Archives that must be refused, each with what the message must mention. */
const HOSTILE: Array<{ what: string; make: () => Promise<Buffer>; says: RegExp }> = [
  { what: 'an entry escaping with ../', make: () => tarball([{ name: 'ok.txt', body: 'ok' }, { name: '../escape.txt', body: 'x' }]), says: /\.\./ },
  { what: 'an entry escaping through a subdirectory', make: () => tarball([{ name: 'a/../../escape.txt', body: 'x' }]), says: /\.\./ },
  { what: 'an absolute path', make: () => tarball([{ name: '/etc/x', body: 'x' }]), says: /absolute.*\/etc\/x/ },
  { what: 'a duplicate entry', make: () => tarball([{ name: 'etc/x', body: '1' }, { name: 'etc/y', body: '2' }, { name: 'etc/x', body: '3' }]), says: /duplicate.*etc\/x/ },
  { what: 'a hard link to an absolute path outside the archive', make: () => tarball([{ name: 'a', body: 'a' }, { name: 'evil', type: 'link', linkname: '/etc/shadow' }]), says: /hard link.*evil/ },
  { what: 'a hard link escaping with ../', make: () => tarball([{ name: 'evil', type: 'link', linkname: '../../outside' }]), says: /\.\./ },
  { what: 'a path under a file', make: () => tarball([{ name: 'a', body: 'file' }, { name: 'a/b', body: 'x' }]), says: /not a directory/ },
  { what: 'a write through a symlink it just made', make: () => tarball([{ name: 'lnk', type: 'symlink', linkname: '/etc' }, { name: 'lnk/passwd', body: 'root::0:0' }]), says: /lnk.*not a directory/ },
  {
    what: 'a truncated gzip',
    make: async () => {
      const gz = gzipSync(await tarball([{ name: 'big', body: randomBytes(100_000) }]));
      return gz.subarray(0, gz.length >> 1);
    },
    says: /bad tar/,
  },
  { what: 'a file that is not a tar', make: async () => Buffer.from('this is just some text, not an archive\n'.repeat(40)), says: /bad tar/ },
  { what: 'a short file that is not a tar', make: async () => Buffer.from('hello\n'), says: /bad tar/ },
];

describe('hostile tars are refused (library)', () => {
  let store: NodeStore;
  beforeAll(async () => {
    store = await openStore(join(tmp, 'hostile-lib'));
    await store.importTar(await tarFile(await tarball([{ name: 'keep', body: 'k' }])), { tag: 'keep' });
  });
  afterAll(() => store.backend.close());

  for (const h of HOSTILE) {
    it(`refuses ${h.what}`, async () => {
      const file = await tarFile(await h.make());
      const err = await store.importTar(file, { tag: 'bad' }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(LayerboxError);
      expect((err as Error).message).toMatch(h.says);
      // Every one is a malformed (or hostile) tar, and says so in its code.
      expect((err as LayerboxError).code).toBe('CORRUPT');
      expect(await tags(store)).toEqual(['keep:latest']);
    });
  }

  it('still works and checks clean after the refusals', async () => {
    await store.importTar(await tarFile(await tarball([{ name: 'fine', body: 'f' }])), { tag: 'fine' });
    expect(await tags(store)).toEqual(['fine:latest', 'keep:latest']);
    expect((await store.fsck()).problems).toEqual([]);
  });

  it('refuses a missing file with a LayerboxError', async () => {
    const err = await store.importTar(join(tmp, 'no-such.tar'), { tag: 'bad' }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(LayerboxError);
    expect((err as Error).message).toContain('no-such.tar');
    expect((err as LayerboxError).code).toBe('NOT_FOUND');
  });
});

describe('tar import (built CLI)', () => {
  let store: string;
  beforeAll(() => {
    store = join(tmp, 'cli-store');
  });

  it('imports a plain and a gzip tar and prints the digest', async () => {
    const raw = await tarball(rootfs());
    for (const [f, tag] of [[await tarFile(raw), 't'], [await tarFile(gzipSync(raw), '.tar.gz'), 'tgz']] as const) {
      const r = await lb(store, 'image', 'import', f, '--tag', tag);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
    expect((await lb(store, 'box', 'create', 'c1', '--image', 't')).code).toBe(0);
    expect((await lb(store, 'cat', 'c1:/etc/hosts')).stdout).toBe('127.0.0.1 localhost\n');
    expect((await lb(store, 'ls', 'c1:/')).stdout.trim().split('\n')).toEqual(['bin/', 'data/', 'deep/', 'etc/', 'srv/']);
    const big = await exec(process.execPath, [CLI, '--store', store, 'cat', 'c1:/data/big.bin'], { encoding: 'buffer', maxBuffer: 1 << 24 });
    expect(Buffer.from(big.stdout).equals(BIG)).toBe(true);
    const bin = JSON.parse((await lb(store, 'ls', 'c1:/bin', '--json')).stdout) as Array<{ name: string; ino: number; nlink: number; type: string }>;
    const tool = bin.find((e) => e.name === 'tool')!, alias = bin.find((e) => e.name === 'tool-alias')!;
    expect(alias.ino).toBe(tool.ino);
    expect(tool.nlink).toBe(2);
    expect(bin.find((e) => e.name === 'sh')?.type).toBe('symlink');
  });

  for (const h of HOSTILE) {
    it(`refuses ${h.what} with one line and status 1`, async () => {
      const file = await tarFile(await h.make());
      const before = (await lb(store, 'image', 'ls', '--json')).stdout;
      const r = await lb(store, 'image', 'import', file, '--tag', 'bad');
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^layerbox: [^\n]+\n$/);
      expect(r.stderr).toMatch(h.says);
      expect(r.stderr).not.toMatch(/internal error/);
      const after = await lb(store, 'image', 'ls', '--json');
      expect(after.stdout).toBe(before);
      expect(JSON.parse(after.stdout).flatMap((i: { tags: string[] }) => i.tags)).not.toContain('bad:latest');
    });
  }
});
