// push/pull against Debian's docker-registry on 127.0.0.1 (scripts/ensure-registry.sh installs it),
// checked with skopeo (scripts/ensure-oci-tools.sh).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { lb } from './fixtures.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeStore, Overlay, openStore, pullFromRegistry, pushToRegistry, readTar, treeEntries, writeTar } from '../runtime/node/index.js';

const exec = promisify(execFile);
const CLI = resolve('dist/cli.js');

for (const tool of ['docker-registry', 'skopeo'])
  if (!existsSync(`/usr/bin/${tool}`)) throw new Error(`/usr/bin/${tool} is missing: run scripts/ensure-registry.sh and scripts/ensure-oci-tools.sh`);

let tmp: string;
let root: string;
let port: number;
let registry: ChildProcess;
let src: NodeStore;
let n = 0;
const stores: NodeStore[] = [];
const fresh = async () => {
  const s = await openStore(join(tmp, `store-${n++}`));
  stores.push(s);
  return s;
};
const host = () => `127.0.0.1:${port}`;

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
async function view(store: NodeStore, ref: string): Promise<Record<string, string>> {
  const m = await store.manifest(await store.resolveImage(ref));
  const ov = new Overlay(await store.mountImage(m), undefined, store.overlayOptions());
  const out: Record<string, string> = {};
  for (const e of treeEntries(ov)) {
    const lk = ov.mergedLookup(e.path)!;
    const ns = (lk.dir ?? lk.leaf!).meta.mtime;
    out['/' + e.path] = `${e.type} ${e.type === 'file' ? sha(e.data!) : e.linkname ?? ''} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${ns}`;
  }
  return out;
}

const enc = (s: string) => new TextEncoder().encode(s);
/** Nanosecond times, not whole seconds. */
const T0 = 1_614_834_367_123_456_789n;

/** Two layers: the second deletes a file, hard-links a lower file and adds files, all with nanosecond mtimes. */
async function buildImage(store: NodeStore): Promise<void> {
  await store.importLayer(async (b) => {
    const m = { mtime: T0 };
    b.addDir('/etc', m);
    await b.addFile('/etc/hosts', enc('127.0.0.1 localhost\n'), m);
    await b.addFile('/etc/gone', enc('delete me\n'), { mtime: T0 + 1n, mode: 0o600, uid: 1000, gid: 1000 });
    await b.addFile('/app/run.sh', enc('#!/bin/sh\necho run\n'), { mtime: T0 + 7n, mode: 0o755 });
    await b.addFile('/app/big', new Uint8Array(200_000).map((_, i) => (i * 7) % 251), { mtime: T0 + 999_999_999n });
    b.addSymlink('/bin/sh', '../app/run.sh', { mtime: T0 + 3n });
  }, { tag: 'demo:v1', config: { env: ['PATH=/bin'], cmd: ['/app/run.sh'], workingDir: '/app' } });
  const box = await store.createBox('work', { image: 'demo:v1' });
  box.fs.unlink('/etc/gone');
  box.fs.link('/app/run.sh', '/app/run-link');
  box.fs.writeFile('/app/new.txt', 'new\n');
  box.fs.mkdir('/var');
  box.fs.writeFile('/var/log', 'log\n');
  await box.commit({ tag: 'demo:v2', message: 'second layer' });
  await store.removeBox('work');
}


beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-registry-'));
  if (!existsSync(CLI)) await exec(process.execPath, ['esbuild.config.mjs']);
  root = join(tmp, 'registry');
  port = await freePort();
  const config = join(tmp, 'config.yml');
  await writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  registry = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  registry.stderr!.on('data', (d) => (err += d));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${host()}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 100 || registry.exitCode !== null) throw new Error(`docker-registry did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  src = await fresh();
  await buildImage(src);
}, 60_000);

afterAll(async () => {
  for (const s of stores) await s.backend.close();
  registry?.kill();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('push and pull', () => {
  it('the layer tar keeps nanosecond mtimes (pax mtime records)', () => {
    const tar = writeTar([{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, mtimeNs: T0, data: enc('x') }, { path: 'g', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 5, data: enc('y') }]);
    const [f, g] = readTar(tar);
    expect(f!.mtimeNs).toBe(T0);
    expect(f!.mtime).toBe(Number(T0 / 1_000_000_000n));
    expect(g!.mtimeNs).toBeUndefined();
    expect(g!.mtime).toBe(5);
  });

  it('pushes, pulls into a fresh store: same image digest, same merged view; a second push uploads nothing', async () => {
    const digest = await src.resolveImage('demo:v2');
    const r1 = await pushToRegistry(src, 'demo:v2', `${host()}/demo:v2`);
    expect(r1.layersUploaded).toBe(2);
    expect(r1.uploaded).toBe(3);
    const r2 = await pushToRegistry(src, 'demo:v2', `${host()}/demo:v2`);
    expect(r2).toMatchObject({ uploaded: 0, layersUploaded: 0, skipped: 3, manifest: r1.manifest });

    const dst = await fresh();
    const p = await pullFromRegistry(dst, `${host()}/demo:v2`);
    expect(p.note).toBeUndefined();
    expect(p).toMatchObject({ digest, tag: 'demo:v2' });
    expect(await dst.resolveImage('demo:v2')).toBe(digest);
    expect(await view(dst, 'demo:v2')).toEqual(await view(src, 'demo:v2'));
    expect((await view(dst, 'demo:v2'))['/app/big']).toContain(String(T0 + 999_999_999n));
    expect(await dst.history('demo:v2')).toEqual(await src.history('demo:v2'));
    expect((await dst.fsck()).problems).toEqual([]);

    // --tag, through the CLI
    const store = join(tmp, `cli-${n++}`);
    const pull = await lb(store, 'pull', `${host()}/demo:v2`, '--tag', 'other:1');
    expect(pull.stderr).toBe('');
    expect(pull.stdout.trim()).toBe(`${digest} other:1`);
  });

  it('the CLI pushes too, and skopeo reads what was pushed', async () => {
    const push = await lb(join(tmp, `store-0`), 'push', 'demo:v1', `${host()}/cli/demo:one`);
    expect(push.stderr).toBe('');
    expect(push.stdout).toMatch(/: \d+ blobs? uploaded, \d+ already there/);
    const out = await exec('skopeo', ['inspect', '--tls-verify=false', `docker://${host()}/cli/demo:one`]);
    const doc = JSON.parse(out.stdout);
    expect(doc.Architecture).toBe('wasm');
    expect(doc.Os).toBe('wasip1');
    expect(doc.Layers).toHaveLength(1);
    const raw = JSON.parse((await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host()}/demo:v2`])).stdout);
    expect(raw.annotations['dev.layerbox.image']).toContain('layerbox-image');
    expect(raw.layers.map((l: any) => l.annotations['dev.layerbox.layer'])).toEqual((await src.manifest(await src.resolveImage('demo:v2'))).layers.map((l) => l.digest));
  });

  it('a renamed directory is materialised in OCI: the pull makes a new image and says why', async () => {
    const box = await src.createBox('ren', { image: 'demo:v2' });
    box.fs.rename('/app', '/app2');
    await box.commit({ tag: 'ren:1' });
    await src.removeBox('ren');
    await pushToRegistry(src, 'ren:1', `${host()}/ren:1`);
    const dst = await fresh();
    const p = await pullFromRegistry(dst, `${host()}/ren:1`);
    expect(p.digest).not.toBe(await src.resolveImage('ren:1'));
    expect(p.note).toMatch(/layer 3 rebuilt as sha256:[0-9a-f]{64}, not sha256:/);
    expect(await view(dst, 'ren:1')).toEqual(await view(src, 'ren:1'));
  });

  it('pulling a missing tag is a clear error', async () => {
    const dst = await fresh();
    await expect(pullFromRegistry(dst, `${host()}/demo:nope`)).rejects.toThrow(`pull ${host()}/demo:nope: no such image or tag (demo:nope is not in ${host()})`);
    await expect(pullFromRegistry(dst, `${host()}/nothere:v1`)).rejects.toThrow(expect.objectContaining({ code: 'NOT_FOUND', message: expect.stringMatching(/no such image or tag/) }));
    const r = await lb(join(tmp, `cli-${n++}`), 'pull', `${host()}/demo:nope`);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('no such image or tag');
  });

  it('a tampered layer blob in the registry makes the pull fail naming its digest; nothing is tagged', async () => {
    await pushToRegistry(src, 'demo:v1', `${host()}/tamper:v1`);
    const raw = JSON.parse((await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host()}/tamper:v1`])).stdout);
    const layer: string = raw.layers[0].digest;
    const file = join(root, 'docker/registry/v2/blobs/sha256', layer.slice(7, 9), layer.slice(7), 'data');
    const size = (await stat(file)).size;
    await writeFile(file, new Uint8Array(size).fill(0x41));
    const dst = await fresh();
    await expect(pullFromRegistry(dst, `${host()}/tamper:v1`)).rejects.toThrow(expect.objectContaining({ code: 'CORRUPT', message: expect.stringContaining(layer) }));
    expect((await dst.backend.readRefs()).tags).toEqual({});
    expect(await readdir(root)).toContain('docker');
  });
});
