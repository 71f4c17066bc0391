import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Digest, digestOf } from '../src/digest.js';
import { LayerboxError } from '../src/errno.js';
import { type Backend, type RefsDoc, emptyRefs } from '../src/store/backend.js';
import { MemoryBackend } from '../src/store/memory.js';
import { DirBackend, openDirBackend } from '../runtime/node/dir-backend.js';

const enc = new TextEncoder();
const blob = (s: string) => { const data = enc.encode(s); return { digest: digestOf(data), data }; };

const tmpRoots: string[] = [];
/** A fresh (not yet existing) directory path under os.tmpdir(), removed after the file's tests. */
function tmpStorePath(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'layerbox-backend-'));
  tmpRoots.push(root);
  return path.join(root, 'store');
}
afterAll(() => { for (const r of tmpRoots) fs.rmSync(r, { recursive: true, force: true }); });

/** One conformance suite, run against every backend. */
function conformance(name: string, make: () => Promise<Backend>) {
  describe(`Backend conformance: ${name}`, () => {
    it('round-trips put / get / has', async () => {
      const b = await make();
      const x = blob('hello'), y = blob('world'), empty = blob('');
      expect(b.hasBlob(x.digest)).toBe(false);
      await b.putBlobs([x, y, empty]);
      for (const v of [x, y, empty]) {
        expect(b.hasBlob(v.digest)).toBe(true);
        expect(await b.getBlob(v.digest)).toEqual(v.data);
        expect(b.readBlobSync(v.digest)).toEqual(v.data);
      }
      const missing = blob('nope').digest;
      expect(() => b.readBlobSync(missing)).toThrow(missing);
      await expect(b.getBlob(missing)).rejects.toThrow(LayerboxError);
      expect((await b.listBlobs()).sort((p, q) => p.digest.localeCompare(q.digest))).toEqual(
        [x, y, empty].map((v) => ({ digest: v.digest, size: v.data.length })).sort((p, q) => p.digest.localeCompare(q.digest)));
      expect(await b.verify()).toEqual([]);
      await b.close();
    });

    it('stores a blob once however often it is put', async () => {
      const b = await make();
      const x = blob('same bytes');
      await b.putBlobs([x, x]);
      await b.putBlobs([x]);
      const s = await b.stats();
      expect(s.blobs).toBe(1);
      expect(s.bytes).toBe(x.data.length);
      await b.close();
    });

    it('round-trips refs and isolates them from callers', async () => {
      const b = await make();
      expect(await b.readRefs()).toEqual(emptyRefs());
      const d = blob('image').digest;
      const refs: RefsDoc = { tags: { 'base:latest': d }, boxes: { dev: { image: d, upper: null, created: '2024-01-01T00:00:00Z' } } };
      await b.writeRefs(refs);
      refs.tags['other:x'] = d; // mutating what we wrote...
      const got = await b.readRefs();
      expect(got).toEqual({ tags: { 'base:latest': d }, boxes: { dev: { image: d, upper: null, created: '2024-01-01T00:00:00Z' } } });
      got.tags['evil:x'] = d; // ...or what we read must not change the store
      got.boxes.dev!.upper = d;
      expect(await b.readRefs()).toEqual({ tags: { 'base:latest': d }, boxes: { dev: { image: d, upper: null, created: '2024-01-01T00:00:00Z' } } });
      await b.close();
    });

    it('deleteBlobs keeps live blobs and frees dead ones', async () => {
      const b = await make();
      const live = [blob('live 1'), blob('live 2')], dead = [blob('dead 1'), blob('dead 22')];
      await b.putBlobs([live[0]!, dead[0]!]);
      await b.putBlobs([live[1]!, dead[1]!]);
      const keep = new Set<Digest>(live.map((v) => v.digest));
      const freed = await b.lock(() => b.deleteBlobs((d) => keep.has(d)));
      expect(freed).toEqual({ blobs: 2, bytes: dead[0]!.data.length + dead[1]!.data.length });
      for (const v of live) expect(b.readBlobSync(v.digest)).toEqual(v.data);
      for (const v of dead) { expect(b.hasBlob(v.digest)).toBe(false); expect(() => b.readBlobSync(v.digest)).toThrow(v.digest); }
      expect((await b.stats()).blobs).toBe(2);
      expect(await b.verify()).toEqual([]);
      await b.close();
    });

    it('lock serialises concurrent critical sections', async () => {
      const b = await make();
      const log: string[] = [];
      const section = (id: string) => b.lock(async () => {
        log.push(`${id} in`);
        for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 2));
        log.push(`${id} out`);
        return id;
      });
      const failing = b.lock(async () => { throw new Error('boom'); });
      expect(await Promise.all([section('a'), section('b'), failing.catch((e: Error) => e.message), section('c')])).toEqual(['a', 'b', 'boom', 'c']);
      expect(log).toEqual(['a in', 'a out', 'b in', 'b out', 'c in', 'c out']);
      await b.close();
    });
  });
}

conformance('memory', async () => new MemoryBackend());
conformance('dir', () => openDirBackend(tmpStorePath()));

/** Finds the only occurrence of `marker` in `file`. */
function offsetOf(file: string, marker: string): number {
  const buf = fs.readFileSync(file), at = buf.indexOf(marker);
  expect(at).toBeGreaterThan(0);
  expect(buf.indexOf(marker, at + 1)).toBe(-1);
  return at;
}

function packFiles(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'packs')).map((n) => path.join(dir, 'packs', n));
}

describe('DirBackend', () => {
  it('keeps the host file count small: 1000 blobs in one batch make one pack', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    const blobs = Array.from({ length: 1000 }, (_, i) => blob(`blob number ${i} `.repeat(1 + (i % 7))));
    await b.lock(() => b.putBlobs(blobs));
    await b.writeRefs(emptyRefs());
    const s = await b.stats();
    expect(s.blobs).toBe(1000);
    expect(s.files).toBeLessThan(10);
    expect(packFiles(dir)).toHaveLength(1);
    for (const i of [0, 1, 499, 999]) expect(b.readBlobSync(blobs[i]!.digest)).toEqual(blobs[i]!.data);
    await b.close();
  });

  it('a new instance sees the same blobs and refs', async () => {
    const dir = tmpStorePath();
    const a = await openDirBackend(dir);
    const x = blob('persisted'), y = blob('also persisted');
    await a.putBlobs([x]);
    await a.putBlobs([y]);
    const refs: RefsDoc = { tags: { 't:1': x.digest }, boxes: {} };
    await a.writeRefs(refs);
    await a.close();
    const b = await openDirBackend(dir, { create: false });
    expect(b).toBeInstanceOf(DirBackend);
    expect(b.hasBlob(x.digest) && b.hasBlob(y.digest)).toBe(true);
    expect(b.readBlobSync(y.digest)).toEqual(y.data);
    expect(await b.readRefs()).toEqual(refs);
    expect((await b.stats()).blobs).toBe(2);
    await b.close();
  });

  it('rescans packs written by another instance before reporting a blob missing', async () => {
    const dir = tmpStorePath();
    const a = await openDirBackend(dir), b = await openDirBackend(dir);
    const x = blob('written by a');
    await a.putBlobs([x]);
    expect(b.readBlobSync(x.digest)).toEqual(x.data);
    expect(b.hasBlob(x.digest)).toBe(true);
    // and a gc by one instance leaves the other able to read the rewritten pack
    const y = blob('dropped by a');
    await a.putBlobs([y]);
    const z = blob('kept, in the same pack as w'), w = blob('dropped, shares a pack with z');
    await a.putBlobs([z, w]);
    expect(b.readBlobSync(y.digest)).toEqual(y.data);
    await a.lock(() => a.deleteBlobs((d) => d !== y.digest && d !== w.digest));
    await b.close(); // drop cached descriptors of removed packs
    expect(b.readBlobSync(z.digest)).toEqual(z.data);
    expect(() => b.readBlobSync(w.digest)).toThrow(w.digest);
    await a.close(); await b.close();
  });

  it('reports a corrupt blob by digest while its pack neighbours still read', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    const bad = blob('MARKER-bad-blob contents'), good = blob('a good neighbour');
    await b.putBlobs([good, bad, blob('another one')]);
    const [pack] = packFiles(dir);
    const at = offsetOf(pack!, 'MARKER-bad-blob');
    const fd = fs.openSync(pack!, 'r+');
    fs.writeSync(fd, Buffer.from('m'), 0, 1, at);
    fs.closeSync(fd);
    expect(() => b.readBlobSync(bad.digest)).toThrow(bad.digest);
    expect(() => b.readBlobSync(bad.digest)).toThrow(/corrupt/);
    await expect(b.getBlob(bad.digest)).rejects.toThrow(bad.digest);
    expect(b.readBlobSync(good.digest)).toEqual(good.data);
    const problems = await b.verify();
    expect(problems.map((p) => p.digest)).toEqual([bad.digest]);
    expect(problems[0]!.where).toBe(`packs/${path.basename(pack!)}`);
    await b.close();
  });

  it('skips a broken pack on open and names it in verify', async () => {
    const dir = tmpStorePath();
    const a = await openDirBackend(dir);
    const x = blob('fine');
    await a.putBlobs([x]);
    await a.close();
    const junk = path.join(dir, 'packs', `${'ab'.repeat(32)}.pack`);
    fs.writeFileSync(junk, 'LBXPACK\0garbage that is long enough to have a footer');
    const b = await openDirBackend(dir);
    expect(b.readBlobSync(x.digest)).toEqual(x.data);
    const problems = await b.verify();
    expect(problems).toHaveLength(1);
    expect(problems[0]!.where).toBe(`packs/${path.basename(junk)}`);
    expect(problems[0]!.problem).toContain(path.basename(junk));
    await b.close();
  });

  it('refuses an unknown store version, a foreign directory, bad refs, and a missing store without create', async () => {
    const dir = tmpStorePath();
    await (await openDirBackend(dir)).close();
    fs.writeFileSync(path.join(dir, 'layerbox-store.json'), JSON.stringify({ magic: 'layerbox-store', version: 99 }));
    await expect(openDirBackend(dir)).rejects.toThrow(/unknown format version 99/);
    fs.writeFileSync(path.join(dir, 'layerbox-store.json'), JSON.stringify({ magic: 'something-else', version: 1 }));
    await expect(openDirBackend(dir)).rejects.toThrow(LayerboxError);

    const foreign = tmpStorePath();
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    await expect(openDirBackend(foreign)).rejects.toThrow(/not empty/);
    await expect(openDirBackend(tmpStorePath(), { create: false })).rejects.toThrow(/no layerbox store/);

    const c = await openDirBackend(tmpStorePath());
    fs.writeFileSync(path.join(c.location, 'refs.json'), JSON.stringify({ magic: 'layerbox-refs', version: 2, tags: {}, boxes: {} }));
    await expect(c.readRefs()).rejects.toThrow(/unknown version 2/);
    await c.close();
  });

  it('takes over a stale lock left by a dead process', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    fs.writeFileSync(path.join(dir, 'lock'), '999999\n');
    fs.writeFileSync(path.join(dir, 'tmp', '999999-leftover'), 'half a pack');
    expect(await b.lock(async () => fs.readFileSync(path.join(dir, 'lock'), 'utf8'))).toBe(`${process.pid}\n`);
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]); // a dead writer's temp file is cleaned
    await b.close();
  });

  it('excludes another process while held, and lets it in after release', async () => {
    const dir = tmpStorePath();
    const b = await openDirBackend(dir);
    const { spawn } = await import('node:child_process');
    // The child takes the lock file the way DirBackend does (create with 'wx', retry), saying when it waits and when it got in.
    const script = `const fs=require('fs');const f=process.argv[1];let said=false;
      (function go(){try{fs.writeFileSync(f,process.pid+'\\n',{flag:'wx'});fs.unlinkSync(f);console.log('got');}
      catch{if(!said){said=true;console.log('waiting');}setTimeout(go,10);}})();`;
    const events: string[] = [];
    let childExit: Promise<unknown> | undefined;
    await b.lock(async () => {
      const child = spawn(process.execPath, ['-e', script, path.join(dir, 'lock')], { stdio: ['ignore', 'pipe', 'inherit'] });
      childExit = new Promise((r) => child.on('exit', r));
      const waiting = new Promise<void>((r) => child.stdout!.on('data', (c: Buffer) => {
        events.push(...c.toString().trim().split('\n'));
        if (events.includes('waiting')) r();
      }));
      await waiting;
      await new Promise((r) => setTimeout(r, 100));
      events.push('released');
    });
    await childExit;
    expect(events).toEqual(['waiting', 'released', 'got']);

    // The other way round: a lock file naming a live process keeps us out until that process removes it.
    const holder = spawn(process.execPath, ['-e', `const fs=require('fs');const f=process.argv[1];fs.writeFileSync(f,process.pid+'\\n',{flag:'wx'});
      console.log('held');setTimeout(()=>fs.unlinkSync(f),300);`, path.join(dir, 'lock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => holder.on('exit', r));
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    const t0 = Date.now();
    await b.lock(async () => { expect(fs.readFileSync(path.join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`); });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    await exited;
    await b.close();
  });
});

describe('DirBackend gc folds small packs', () => {
  it('keeps the host file count flat over many flushes', async () => {
    const { mkdtemp, rm, readdir } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'layerbox-fold-'));
    try {
      const b = await openDirBackend(dir);
      const all: Array<{ digest: Digest; data: Uint8Array }> = [];
      for (let i = 0; i < 30; i++) {
        const data = new TextEncoder().encode(`flush number ${i}`);
        const blob = { digest: digestOf(data), data };
        all.push(blob);
        await b.lock(() => b.putBlobs([blob]));
      }
      expect((await readdir(join(dir, 'packs'))).length).toBe(30);
      const dead = new Set(all.slice(0, 10).map((x) => x.digest));
      await b.lock(() => b.deleteBlobs((d) => !dead.has(d)));
      expect((await readdir(join(dir, 'packs'))).length).toBe(1);
      for (const x of all.slice(10)) expect(new TextDecoder().decode(b.readBlobSync(x.digest))).toBe(new TextDecoder().decode(x.data));
      expect(b.hasBlob(all[0]!.digest)).toBe(false);
      expect(await b.verify()).toEqual([]);
      await b.close();
      const again = await openDirBackend(dir);
      expect((await again.stats()).blobs).toBe(20);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
