// OCI image layouts and docker save archives: export, import, and round trips
// through Debian's skopeo and umoci (scripts/ensure-oci-tools.sh installs them).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { lb } from './fixtures.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerboxError, type NodeStore, Overlay, type TarEntry, exportOciArchive, importOciArchive, openStore, readTar, treeEntries, writeTar } from '../runtime/node/index.js';

const exec = promisify(execFile);
const CLI = resolve('dist/cli.js');
let tmp: string;
let n = 0;
const fresh = (name: string) => join(tmp, `${name}-${n++}`);

for (const tool of ['skopeo', 'umoci'])
  if (!existsSync(`/usr/bin/${tool}`)) throw new Error(`/usr/bin/${tool} is missing: run scripts/ensure-oci-tools.sh`);


async function tool(cmd: string, ...argv: string[]): Promise<string> {
  try {
    return (await exec(cmd, argv, { maxBuffer: 64 << 20 })).stdout;
  } catch (e: any) {
    throw new Error(`${cmd} ${argv.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const T = (s: string) => BigInt(Date.parse(s) / 1000) * 1_000_000_000n;

/**
 * The merged view of an image, one line per path: type, content or target,
 * hard-link identity (later names point at the first). `full` adds mode,
 * owner and mtime (kept by layerbox round trips, not by a rootless unpack).
 */
async function view(store: NodeStore, ref: string, full = true): Promise<Record<string, string>> {
  const m = await store.manifest(await store.resolveImage(ref));
  const ov = new Overlay(await store.mountImage(m), undefined, store.overlayOptions());
  const out: Record<string, string> = {};
  for (const e of treeEntries(ov)) {
    const what = e.type === 'file' ? sha(e.data!) : e.type === 'dir' ? '' : e.linkname!;
    const meta = full ? ` ${e.mode.toString(8)} ${e.uid}:${e.gid} ${e.mtime}` : e.type === 'file' ? ` ${e.mode.toString(8)}` : '';
    out['/' + e.path] = `${e.type} ${what}${meta}`;
  }
  return out;
}

/** The same listing for a host directory (an unpacked rootfs): hard links by inode. */
async function hostView(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const first = new Map<bigint, string>();
  const walk = async (dir: string, rel: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name), r = rel ? `${rel}/${name}` : name;
      const st = await lstat(p, { bigint: true });
      if (st.isDirectory()) {
        out['/' + r] = 'dir ';
        await walk(p, r);
      } else if (st.isSymbolicLink()) out['/' + r] = `symlink ${await readlink(p)}`;
      else {
        const f = first.get(st.ino);
        if (f !== undefined) out['/' + r] = `hardlink ${f}`;
        else {
          out['/' + r] = `file ${sha(await readFile(p))} ${(Number(st.mode) & 0o7777).toString(8)}`;
          first.set(st.ino, r);
        }
      }
    }
  };
  await walk(root, '');
  return out;
}

/**
 * An image with every kind of change in its second layer: a deleted file, a
 * renamed directory (a redirect) with a new file in it, a hard link to a lower
 * file, and a directory removed and made again (opaque).
 */
async function buildImage(store: NodeStore): Promise<void> {
  await store.importLayer(async (b) => {
    const m = { mtime: T('2021-03-04T05:06:07Z') };
    b.addDir('/etc', m);
    await b.addFile('/etc/hosts', new TextEncoder().encode('127.0.0.1 localhost\n'), m);
    await b.addFile('/etc/gone', new TextEncoder().encode('delete me\n'), { ...m, mode: 0o600, uid: 1000, gid: 1000 });
    b.addDir('/app', m);
    b.addDir('/app/lib', { ...m, mode: 0o750 });
    await b.addFile('/app/lib/a.txt', new TextEncoder().encode('A'.repeat(300)), m);
    await b.addFile('/app/lib/sub/b.txt', new TextEncoder().encode('B\n'), m);
    await b.addFile('/app/run.sh', new TextEncoder().encode('#!/bin/sh\necho run\n'), { ...m, mode: 0o755 });
    await b.addFile('/data/one', new TextEncoder().encode('one\n'), m);
    b.addHardlink('/data/link', '/data/one');
    await b.addFile('/cache/x', new TextEncoder().encode('x'), m);
    await b.addFile('/cache/y', new TextEncoder().encode('y'), m);
    b.addSymlink('/bin/sh', '../app/run.sh', m);
  }, { tag: 'demo:v1', config: { env: ['PATH=/bin', 'GREETING=hi'], cmd: ['/app/run.sh', '--fast'], workingDir: '/app' } });
  const box = await store.createBox('work', { image: 'demo:v1' });
  const fs = box.fs;
  fs.unlink('/etc/gone');
  fs.rename('/app/lib', '/app/lib2');
  fs.writeFile('/app/lib2/new.txt', 'new\n');
  fs.link('/app/run.sh', '/app/run-link');
  fs.unlink('/cache/x');
  fs.unlink('/cache/y');
  fs.rmdir('/cache');
  fs.mkdir('/cache');
  fs.writeFile('/cache/z', 'z\n');
  await box.commit({ tag: 'demo:v2', message: 'second layer' });
  await store.removeBox('work');
}

let src: string;
let srcStore: NodeStore;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-oci-'));
  if (!existsSync(CLI)) await exec(process.execPath, ['esbuild.config.mjs']);
  src = join(tmp, 'src-store');
  srcStore = await openStore(src);
  await buildImage(srcStore);
});
afterAll(async () => {
  await srcStore?.backend.close();
  await rm(tmp, { recursive: true, force: true });
});

function entriesOf(tar: Uint8Array): Map<string, Uint8Array> {
  return new Map(readTar(tar).filter((e) => e.type === 'file').map((e) => [e.path, e.data!]));
}
const json = (b: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(b!));

describe('export --format oci', () => {
  it('the image really has a redirect, an opaque directory, a whiteout and a hard link in its second layer', async () => {
    const m = await srcStore.manifest(await srcStore.resolveImage('demo:v2'));
    const t = await srcStore.layerTable(m.layers[1]!.digest);
    const by = new Map(t.entries.map((e) => [e.path, e]));
    expect(by.get('app/lib2')?.redirect).toBe('app/lib');
    expect(by.get('cache')?.opaque).toBe(true);
    expect(by.get('etc/gone')?.type).toBe('whiteout');
    expect(t.entries.some((e) => e.type === 'hardlink')).toBe(true);
  });

  it('writes a deterministic OCI layout: gzip layers, diff_ids, config, whiteouts before siblings', async () => {
    const a = await exportOciArchive(srcStore, ['demo:v2'], 'oci');
    const b = await exportOciArchive(srcStore, ['demo:v2'], 'oci');
    expect(sha(a)).toBe(sha(b));
    const files = entriesOf(a);
    expect(json(files.get('oci-layout'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = json(files.get('index.json'));
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('demo:v2');
    const blob = (d: string) => files.get(`blobs/sha256/${d.slice(7)}`)!;
    for (const [p, data] of files) if (p.startsWith('blobs/')) expect(p).toBe(`blobs/sha256/${sha(data)}`);
    const manifest = json(blob(index.manifests[0].digest));
    expect(manifest.layers.map((l: any) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+gzip']);
    const config = json(blob(manifest.config.digest));
    expect(config).toMatchObject({ architecture: 'wasm', os: 'wasip1', config: { Env: ['PATH=/bin', 'GREETING=hi'], Cmd: ['/app/run.sh', '--fast'], WorkingDir: '/app' } });
    expect(config.history.map((h: any) => h.comment ?? '')).toEqual(['', 'second layer']);
    const tars = manifest.layers.map((l: any) => new Uint8Array(gunzipSync(blob(l.digest))));
    expect(config.rootfs.diff_ids).toEqual(tars.map((t: Uint8Array) => `sha256:${sha(t)}`));
    const names = readTar(tars[1]).map((e) => `${e.type} ${e.path}${e.linkname ? ' -> ' + e.linkname : ''}`);
    const at = (s: string) => names.findIndex((x) => x === s || x.startsWith(s + ' '));
    // Whiteouts come before their siblings; an opaque marker right after its directory.
    expect(at('file etc/.wh.gone')).toBeGreaterThan(at('dir etc/'));
    expect(at('file app/.wh.lib')).toBe(at('dir app/') + 1);
    expect(at('file cache/.wh..wh..opq')).toBe(at('dir cache/') + 1);
    // The renamed directory is materialised: opaque, with its whole merged subtree.
    expect(at('file app/lib2/.wh..wh..opq')).toBe(at('dir app/lib2/') + 1);
    for (const p of ['file app/lib2/a.txt', 'dir app/lib2/sub/', 'file app/lib2/sub/b.txt', 'file app/lib2/new.txt']) expect(at(p)).toBeGreaterThan(0);
    expect(names.filter((x) => x.startsWith('hardlink'))).toEqual(['hardlink app/run.sh -> app/run-link']);
  });

  it('refuses a guest file named .wh.* with a clear error', async () => {
    const s = await openStore('memory:');
    await s.importFiles([{ path: 'ok', data: 'fine' }], { tag: 'w' });
    const box = await s.createBox('b', { image: 'w' });
    box.fs.mkdir('/dir');
    box.fs.writeFile('/dir/.wh.sneaky', 'x');
    await box.commit({ tag: 'w:2' });
    await expect(exportOciArchive(s, ['w:2'], 'oci')).rejects.toThrow(expect.objectContaining({ code: 'INVALID', message: expect.stringMatching(/\/dir\/\.wh\.sneaky has a name starting with "\.wh\."/) }));
    await expect(exportOciArchive(s, ['w:2'], 'oci')).rejects.toBeInstanceOf(LayerboxError);
  });
});

describe('round trips through skopeo and umoci', () => {
  let layout: string;

  it('skopeo copies the archive to an OCI directory and back; import gives the same merged view', async () => {
    const file = fresh('demo') + '.tar';
    const r = await lb(src, 'export', 'demo:v2', '-o', file, '--format', 'oci');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    layout = fresh('layout');
    await tool('skopeo', 'copy', '--quiet', `oci-archive:${file}`, `oci:${layout}:rt`);
    const back = fresh('back') + '.tar';
    await tool('skopeo', 'copy', '--quiet', `oci:${layout}:rt`, `oci-archive:${back}`);
    const dst = fresh('dst-store');
    const imp = await lb(dst, 'import', back, '--tag', 'copy:rt');
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    expect(imp.stdout).toMatch(/^sha256:[0-9a-f]{64} copy:rt\n$/);
    const s = await openStore(dst);
    try {
      expect(await view(s, 'copy:rt')).toEqual(await view(srcStore, 'demo:v2'));
      const info = await s.inspectImage('copy:rt');
      expect(info.config).toEqual({ env: ['PATH=/bin', 'GREETING=hi'], cmd: ['/app/run.sh', '--fast'], workingDir: '/app' });
      expect(info.layers).toHaveLength(2);
      expect(info.history.map((h) => h.comment)).toEqual(['', 'second layer']);
    } finally {
      await s.backend.close();
    }
    // The OCI directory itself imports too (tag from its ref.name).
    const dst2 = fresh('dst-store');
    const imp2 = await lb(dst2, 'import', layout);
    expect(imp2.code).toBe(0);
    expect(imp2.stdout).toMatch(/ rt:latest\n$/);
  });

  it('umoci unpacks the layout to a rootfs equal to the merged view', async () => {
    const bundle = fresh('bundle');
    // `umoci unpack` also writes a runtime config from the image config; umoci refuses os "wasip1" there,
    // so the rootfs is unpacked with `raw unpack` (the same layer application code).
    await tool('umoci', 'raw', 'unpack', '--rootless', '--image', `${layout}:rt`, bundle);
    const expected = await view(srcStore, 'demo:v2', false);
    expect(await hostView(bundle)).toEqual(expected);
  });

  it('imports an image made by umoci and shows a deletion from its second layer', async () => {
    const dir = fresh('umoci');
    await tool('umoci', 'init', '--layout', dir);
    await tool('umoci', 'new', '--image', `${dir}:t`);
    const bundle = fresh('ubundle');
    await tool('umoci', 'unpack', '--rootless', '--image', `${dir}:t`, bundle);
    const rootfs = join(bundle, 'rootfs');
    await mkdir(join(rootfs, 'etc/conf.d'), { recursive: true });
    await writeFile(join(rootfs, 'etc/conf.d/keep'), 'keep\n');
    await writeFile(join(rootfs, 'etc/conf.d/drop'), 'drop\n');
    await writeFile(join(rootfs, 'hello'), 'hello from umoci\n');
    await tool('umoci', 'repack', '--image', `${dir}:t`, bundle);
    await rm(join(rootfs, 'etc/conf.d/drop'));
    await tool('umoci', 'repack', '--image', `${dir}:t`, bundle);
    await tool('umoci', 'config', '--image', `${dir}:t`, '--config.env', 'MODE=umoci', '--config.workingdir', '/etc');

    const dst = fresh('dst-store');
    const r = await lb(dst, 'import', dir, '--tag', 'from-umoci:1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = await openStore(dst);
    try {
      const v = await view(s, 'from-umoci:1', false);
      expect(v['/etc/conf.d/keep']).toBe(`file ${sha(new TextEncoder().encode('keep\n'))} 644`);
      expect(v['/etc/conf.d/drop']).toBeUndefined();
      expect(v['/hello']).toBeDefined();
      const info = await s.inspectImage('from-umoci:1');
      expect(info.config.env).toContain('MODE=umoci');
      expect(info.config.workingDir).toBe('/etc');
      // umoci's own unpack of the final image agrees with the imported view.
      const again = fresh('ubundle2');
      await tool('umoci', 'unpack', '--rootless', '--image', `${dir}:t`, again);
      expect(v).toEqual(await hostView(join(again, 'rootfs')));
    } finally {
      await s.backend.close();
    }
  });

  it('docker format: skopeo reads it as docker-archive and writes it back; import gives the same view', async () => {
    const file = fresh('docker') + '.tar';
    expect((await lb(src, 'export', 'demo:v2', '-o', file, '--format', 'docker')).code).toBe(0);
    const files = entriesOf(new Uint8Array(await readFile(file)));
    const man = json(files.get('manifest.json'));
    expect(man).toHaveLength(1);
    expect(man[0].RepoTags).toEqual(['demo:v2']);
    const copy = fresh('docker2') + '.tar';
    await tool('skopeo', 'copy', '--quiet', `docker-archive:${file}`, `docker-archive:${copy}:again:v3`);
    const oci = fresh('docker-oci');
    await tool('skopeo', 'copy', '--quiet', `docker-archive:${file}`, `oci:${oci}:d`);
    const dst = fresh('dst-store');
    const r = await lb(dst, 'import', copy);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/ again:v3\n$/);
    const r2 = await lb(dst, 'import', file);
    expect(r2.stdout).toMatch(/ demo:v2\n$/);
    const r3 = await lb(dst, 'import', oci, '--tag', 'via-oci:d');
    expect(r3.code).toBe(0);
    const s = await openStore(dst);
    try {
      const want = await view(srcStore, 'demo:v2');
      expect(await view(s, 'again:v3')).toEqual(want);
      expect(await view(s, 'demo:v2')).toEqual(want);
      expect(await view(s, 'via-oci:d')).toEqual(want);
      expect((await s.inspectImage('again:v3')).config.cmd).toEqual(['/app/run.sh', '--fast']);
    } finally {
      await s.backend.close();
    }
  });
});

// ---- hostile archives -------------------------------------------------------------

const file = (path: string, data: string | Uint8Array): TarEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: typeof data === 'string' ? new TextEncoder().encode(data) : data });
const digestOf = (b: Uint8Array) => `sha256:${sha(b)}`;

/**
 * A hand-made OCI layout tar of one image. `blob` may change a layer blob
 * after its descriptor was made, `diffId` may lie.
 */
function craft(layers: Uint8Array[], opts: { blob?: (b: Uint8Array, i: number) => Uint8Array; diffId?: (d: string, i: number) => string; gzip?: boolean } = {}): Uint8Array {
  const blobs = new Map<string, Uint8Array>();
  const put = (b: Uint8Array) => {
    const d = digestOf(b);
    blobs.set(`blobs/sha256/${d.slice(7)}`, b);
    return { digest: d, size: b.length };
  };
  const descs = layers.map((tar, i) => {
    const gz = opts.gzip === false ? tar : new Uint8Array(gzipSync(tar));
    const d = put(gz);
    const stored = opts.blob?.(gz, i);
    if (stored) blobs.set(`blobs/sha256/${d.digest.slice(7)}`, stored);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...d };
  });
  const config = new TextEncoder().encode(JSON.stringify({ architecture: 'wasm', os: 'wasip1', rootfs: { type: 'layers', diff_ids: layers.map((t, i) => (opts.diffId ?? ((d) => d))(digestOf(t), i)) } }));
  const manifest = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) }, layers: descs }));
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...put(manifest), annotations: { 'org.opencontainers.image.ref.name': 'evil:1' } }] };
  return writeTar([file('oci-layout', '{"imageLayoutVersion":"1.0.0"}'), file('index.json', JSON.stringify(index)), ...[...blobs].map(([p, b]) => file(p, b))]);
}

const goodLayer = writeTar([file('a.txt', 'fine\n')]);

describe('hostile archives are refused, nothing tagged', () => {
  const cases: Array<[string, () => Uint8Array, RegExp]> = [
    ['a layer blob that does not match its digest', () => craft([goodLayer, writeTar([file('b.txt', 'also fine\n')])], { blob: (b, i) => (i === 1 ? new Uint8Array(gzipSync(writeTar([file('a.txt', 'evil\n')]))) : b) }), /layer 2: blob sha256:[0-9a-f]{64} does not match its digest/],
    ['a diff_id mismatch', () => craft([goodLayer], { diffId: () => `sha256:${'0'.repeat(64)}` }), /layer 1: uncompressed layer hashes to sha256:[0-9a-f]{64}, but the image config's diff_id is sha256:0{64}/],
    ['a truncated gzip layer', () => craftTruncated(), /layer 1: bad gzip stream/],
    ['a layer with ../ paths', () => craft([goodLayer, writeTar([file('../../etc/evil', 'x')])]), /layer 2 \(sha256:[0-9a-f]{64}\): refusing path with "\.\."/],
  ];
  for (const [name, make, error] of cases) {
    it(name, async () => {
      const f = fresh('evil') + '.tar';
      await writeFile(f, make());
      const s = await openStore('memory:');
      // Each is input failing its checks, whatever its message.
      await expect(importOciArchive(s, f)).rejects.toThrow(expect.objectContaining({ code: 'CORRUPT', message: expect.stringMatching(error) }));
      await expect(importOciArchive(s, f, { tag: 'x:1' })).rejects.toBeInstanceOf(LayerboxError);
      expect(await s.listImages()).toEqual([]);
      const store = fresh('evil-store');
      const r = await lb(store, 'import', f);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(error);
      expect((await lb(store, 'image', 'ls', '--json')).stdout.trim()).toBe('[]');
    });
  }
});

/** A layout whose only layer is a gzip stream cut short (its descriptor digest matches the cut bytes). */
function craftTruncated(): Uint8Array {
  const tar = writeTar([file('big', 'x'.repeat(50_000))]);
  const gz = new Uint8Array(gzipSync(tar));
  const cut = gz.subarray(0, gz.length - 20);
  const d = digestOf(cut);
  const config = new TextEncoder().encode(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [digestOf(tar)] } }));
  const manifest = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: cut.length }] }));
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length }] };
  return writeTar([file('oci-layout', '{"imageLayoutVersion":"1.0.0"}'), file('index.json', JSON.stringify(index)), ...[cut, config, manifest].map((b) => file(`blobs/sha256/${sha(b)}`, b))]);
}
