/**
 * Every way out we know of, in one place. A canary directory sits next to the
 * store and the host mount; guests (a real WASI program, and raw WASI calls)
 * and images (tars, OCI layouts, docker archives, bundles, directories, layer
 * tables) try to read, write, link or name it. None may succeed: each attempt
 * gets an errno or a clear error, and the canary and everything around the
 * store end exactly as they began.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIR_RIGHTS, FILE_RIGHTS, LOOKUP_SYMLINK_FOLLOW, OFLAGS } from '../src/wasi/defs.js';
import { DirFd, Errno, HostFs, LayerboxError, WasiHost, decodeLayer, encodeLayer, memoryStore, openStore, writeTar, type LayerTable, type NodeStore, type TarEntry } from '../runtime/node/index.js';
import { lb as lbIn } from './fixtures.js';

const ESCAPE = resolve('test/wasi/build/escape.wasm');
const SECRET = 'the canary: nothing in a box may see this\n';

let tmp: string;
let outside: string;
let store: string;
let mount: string;
const lb = (...argv: string[]) => lbIn(store, ...argv);

/** Every path under `root` (but the store, which is allowed to change) with its type and content hash. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const rel = relative(root, p);
      if (rel === 'store' || rel.startsWith('store/')) continue;
      const st = statSync(p, { throwIfNoEntry: false }) ?? null;
      let kind: string;
      try {
        kind = `link ${readlinkSync(p)}`;
      } catch {
        kind = st?.isDirectory() ? 'dir' : `file ${createHash('sha256').update(readFileSync(p)).digest('hex')} ${st!.mode.toString(8)}`;
      }
      out[rel] = kind;
      if (kind === 'dir') walk(p);
    }
  };
  walk(root);
  return out;
}
let before: Record<string, string>;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-escape-'));
  outside = join(tmp, 'outside');
  store = join(tmp, 'store');
  mount = join(tmp, 'mount');
  await mkdir(outside);
  await writeFile(join(outside, 'secret'), SECRET);
  await mkdir(join(tmp, 'tree/etc'), { recursive: true });
  await writeFile(join(tmp, 'tree/etc/secret'), 'box secret\n');
  // Host symlinks in the tree an image is made from: stored as symlinks, never followed.
  await symlink(join(outside, 'secret'), join(tmp, 'tree/abs-out'));
  await symlink('../../outside/secret', join(tmp, 'tree/up-out'));
  await symlink(outside, join(tmp, 'tree/dir-out'));
  await mkdir(mount);
  await symlink(join(outside, 'secret'), join(mount, 'abs-out'));
  await symlink('../outside/secret', join(mount, 'up-out'));
  await symlink(outside, join(mount, 'dir-out'));
  await writeFile(join(mount, 'legit.txt'), 'a file of the mount\n');
  expect((await lb('image', 'import', join(tmp, 'tree'), '--tag', 'base')).code).toBe(0);
  before = snapshot(tmp);
});
afterAll(async () => {
  // Whatever ran, nothing outside the store changed: not the canary, not the mount, not the tree.
  const after = snapshot(tmp);
  await rm(tmp, { recursive: true, force: true });
  expect(after).toEqual(before);
});

describe('a guest', () => {
  it('a real WASI program: .., absolute and climbing symlinks, chains, links and renames across mounts, overlong names', async () => {
    expect((await lb('box', 'create', 'esc', '--image', 'base')).code).toBe(0);
    const r = await lb('run', '--box', 'esc', '--dir', `${mount}::/host`, ESCAPE);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([
      'dotdot from root: ENOTCAPABLE',
      'dotdot from host mount: ENOTCAPABLE',
      'absolute symlink in box: ok',
      'read via absolute symlink: read "box secret"',
      'climbing symlink in box: ok',
      'read via climbing symlink: ENOENT',
      'symlink chain: ok',
      'read via chain: ENOENT',
      'host symlink to host /etc/passwd: ENOENT',
      'host symlink climbing out: ENOENT',
      // An absolute target would name the host's root outside the sandbox: refused, as wasmtime does.
      'guest symlink in host mount: EPERM',
      'read via guest symlink in host mount: ENOENT',
      'hard link box -> host mount: EXDEV',
      'hard link from outside host mount: ENOTCAPABLE',
      'hard link via host symlink: ENOENT',
      'rename box -> host mount: EXDEV',
      'overlong name: ENAMETOOLONG',
      'mkdir overlong name: ENAMETOOLONG',
    ]);
  });

  it('symlinks the image brought from the host resolve inside the box', async () => {
    const s = await openStore(store);
    try {
      const box = await s.ephemeralBox('base');
      expect(box.fs.readlink('/abs-out')).toBe(join(outside, 'secret'));
      for (const p of ['/abs-out', '/up-out', '/dir-out/secret']) expect(() => box.fs.readFile(p), p).toThrow(expect.objectContaining({ errno: Errno.NOENT }));
    } finally {
      await s.backend.close();
    }
  });

  describe('raw WASI calls', () => {
    // fd 3: the box at /, fd 4: the host mount at /host.
    let host: WasiHost;
    let mem: Uint8Array;
    let box: Awaited<ReturnType<NodeStore['ephemeralBox']>>;
    let s: NodeStore;
    beforeAll(async () => {
      s = await openStore(store);
      box = await s.ephemeralBox('base');
      const ctx = (fs: DirFd['ctx']['fs'], dev: bigint) => ({ fs, root: '/', now: () => 0n, dev });
      host = new WasiHost({
        fds: [undefined, undefined, undefined, new DirFd(ctx(box.fs, 1n), '/', DIR_RIGHTS, DIR_RIGHTS | FILE_RIGHTS, '/'), new DirFd(ctx(new HostFs(mount), 2n), '/', DIR_RIGHTS, DIR_RIGHTS | FILE_RIGHTS, '/host')],
      });
      const memory = { buffer: new ArrayBuffer(65536) };
      host.initialize({ exports: { memory } });
      mem = new Uint8Array(memory.buffer);
    });
    afterAll(() => s.backend.close());
    /** Puts a path at 1024 (and a second at 2048); returns [ptr, len]. */
    const at = (p: string, where = 1024): [number, number] => {
      const b = new TextEncoder().encode(p);
      mem.set(b, where);
      return [where, b.length];
    };
    const open = (dirfd: number, p: string, follow = true, oflags = 0) => host.wasiImport.path_open!(dirfd, follow ? LOOKUP_SYMLINK_FOLLOW : 0, ...at(p), oflags, BigInt(FILE_RIGHTS), 0n, 0, 4000);

    // In order: from the renumbering on, fd 3 is the host mount, so the later attempts go at HostFs.
    it('(control) opens what it may: a box file, a mount file', () => {
      expect(open(3, 'etc/secret')).toBe(Errno.SUCCESS);
      expect(open(4, 'legit.txt')).toBe(Errno.SUCCESS);
      expect(open(4, 'missing.txt')).toBe(Errno.NOENT);
    });
    const attempts: Array<[string, () => number | void]> = [
      ['open .. of the box', () => open(3, '..')],
      ['open ../outside/secret from the mount', () => open(4, '../outside/secret')],
      ['open through a host symlink out (absolute)', () => open(4, 'abs-out')],
      ['open through a host symlink out (climbing)', () => open(4, 'up-out')],
      ['open through a host symlink to a directory out', () => open(4, 'dir-out/secret')],
      ['create through a host symlink to a directory out', () => open(4, 'dir-out/new', true, OFLAGS.CREAT)],
      ['stat through a host symlink out', () => host.wasiImport.path_filestat_get!(4, LOOKUP_SYMLINK_FOLLOW, ...at('abs-out'), 4000)],
      ['an absolute path on the mount fd', () => open(4, join(outside, 'secret'))],
      ['stdin as a directory fd', () => open(0, 'etc/secret')],
      ['a closed fd as a directory fd', () => open(9, 'etc/secret')],
      ['a file as a directory fd', () => (open(3, 'etc/secret') === Errno.SUCCESS ? open(new DataView(mem.buffer).getUint32(4000, true), '../../outside/secret') : -1)],
      ['the mount renumbered over the root, then ..', () => (host.wasiImport.fd_renumber!(4, 3) === Errno.SUCCESS ? open(3, '../outside/secret') : -1)],
      ['unlink ../outside/secret', () => host.wasiImport.path_unlink_file!(3, ...at('../outside/secret'))],
      ['rmdir ..', () => host.wasiImport.path_remove_directory!(3, ...at('..'))],
      ['rename ../outside into the mount', () => host.wasiImport.path_rename!(3, ...at('../outside'), 3, ...at('stolen', 2048))],
      ['hard link from ../outside/secret', () => host.wasiImport.path_link!(3, 0, ...at('../outside/secret'), 3, ...at('stolen', 2048))],
      ['hard link through a host symlink out', () => host.wasiImport.path_link!(3, LOOKUP_SYMLINK_FOLLOW, ...at('abs-out'), 3, ...at('stolen', 2048))],
      ['utimes through a host symlink out', () => host.wasiImport.path_filestat_set_times!(3, LOOKUP_SYMLINK_FOLLOW, ...at('dir-out/secret'), 0n, 0n, 5)],
      ['mkdir under a host symlink out', () => host.wasiImport.path_create_directory!(3, ...at('dir-out/made'))],
    ];
    for (const [what, attempt] of attempts) {
      it(`refuses: ${what}`, () => {
        const rc = attempt();
        expect(rc, what).not.toBe(Errno.SUCCESS);
        expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe(SECRET);
      });
    }
  });
});

describe('an image', () => {
  const entry = (path: string, extra: Partial<TarEntry> = {}): TarEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new TextEncoder().encode('pwned\n'), ...extra });
  const hostileTars: Array<[string, () => TarEntry[]]> = [
    ['an entry with ../', () => [entry('../outside/pwned')]],
    ['an entry climbing through a subdirectory', () => [entry('a/../../outside/pwned')]],
    ['an absolute path', () => [entry(join(outside, 'pwned'))]],
    ['a hard link to a host path', () => [entry('x', { type: 'hardlink', linkname: join(outside, 'secret'), data: undefined })]],
    ['a hard link climbing out', () => [entry('x', { type: 'hardlink', linkname: '../outside/secret', data: undefined })]],
    ['a write through a symlink it just made', () => [entry('lnk', { type: 'symlink', linkname: outside, data: undefined }), entry('lnk/pwned')]],
    ['a write through a symlink to .. it just made', () => [entry('up', { type: 'symlink', linkname: '..', data: undefined }), entry('up/pwned')]],
  ];
  for (const [what, entries] of hostileTars) {
    it(`tar: refuses ${what}, through the CLI, leaving no tag`, async () => {
      const file = join(tmp, 'store', 'hostile.tar');
      await writeFile(file, writeTar(entries()));
      const r = await lb('image', 'import', file, '--tag', 'evil');
      await rm(file);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^layerbox: .+\n$/);
      expect((await lb('image', 'ls')).stdout).not.toContain('evil');
    });
  }

  it('OCI and docker archives: member paths and digests that climb out are refused', async () => {
    const dir = join(tmp, 'store', 'oci');
    const cases: Array<[string, Record<string, string>]> = [
      ['docker Config with ../', { 'manifest.json': JSON.stringify([{ Config: '../../outside/secret', Layers: [] }]) }],
      ['docker layer with an absolute path', { 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: [join(outside, 'secret')] }]), 'c.json': '{"rootfs":{"diff_ids":["sha256:' + '0'.repeat(64) + '"]}}' }],
      ['OCI descriptor digest with ../', { 'oci-layout': '{"imageLayoutVersion":"1.0.0"}', 'index.json': JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:../../../outside/secret', size: 10 }] }) }],
    ];
    for (const [what, files] of cases) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      for (const [p, text] of Object.entries(files)) await writeFile(join(dir, p), text);
      const r = await lb('import', dir, '--tag', 'evil:oci');
      expect(r.code, what).toBe(1);
      expect(r.stderr, what).toMatch(/^layerbox: .+\n$/);
      expect(r.stderr, what).not.toContain(SECRET.trim());
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('bundles: blob names and box names that climb out are refused', async () => {
    const head = (doc: object): TarEntry => entry('layerbox-bundle.json', { data: new TextEncoder().encode(JSON.stringify({ magic: 'layerbox-bundle', version: 1, ...doc })) });
    const good = await lb('export', 'base', '-o', join(tmp, 'store', 'good.lbx'));
    expect(good.code).toBe(0);
    const cases: Array<[string, TarEntry[]]> = [
      ['a box named ../../outside/pwned', [head({ images: [], boxes: [{ name: '../../outside/pwned', image: 'sha256:' + '0'.repeat(64) }] })]],
      ['a blob stored as ../../outside/pwned', [head({ images: [], boxes: [] }), entry('blobs/sha256/../../../outside/pwned')]],
    ];
    for (const [what, entries] of cases) {
      const file = join(tmp, 'store', 'evil.lbx');
      await writeFile(file, writeTar(entries));
      const r = await lb('import', file);
      await rm(file);
      expect(existsSync(join(outside, 'pwned')), what).toBe(false);
      if (r.code === 0) expect((await lb('box', 'ls')).stdout, what).not.toContain('outside');
      else expect(r.stderr, what).toMatch(/^layerbox: .+\n$/);
    }
  });

  it('layer tables: entries naming .., absolute or climbing paths are refused when read', () => {
    const table = (path: string): LayerTable => ({ kind: 'layer', chunkSize: 8, entries: [{ path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0n }, { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0n }] });
    for (const p of ['..', 'a/..', '/abs', 'a//b', './a'])
      expect(() => decodeLayer(encodeLayer(table(p)), 'evil'), p).toThrow(LayerboxError);
  });

  it('a stored hostile symlink stays a name: following it stays inside the box', async () => {
    const s = memoryStore();
    await s.importLayer(async (b) => {
      b.addSymlink('/etc-link', join(outside, 'secret'));
      b.addSymlink('/up', '../../../../..');
    }, { tag: 'x' });
    const box = await s.createBox('b', { image: 'x' });
    expect(() => box.fs.readFile('/etc-link')).toThrow(expect.objectContaining({ errno: Errno.NOENT }));
    expect(box.fs.readdir('/up').map((e) => e.name).sort()).toEqual(['etc-link', 'up']);
  });
});
