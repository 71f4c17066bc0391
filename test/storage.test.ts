import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeLayer, openStore, type Digest } from '../runtime/node/index.js';

const exec = promisify(execFile);
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-storage-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const MiB = 1024 * 1024;

describe('copy-up cost', () => {
  it('a 1-byte write into a 100 MiB image file stores one chunk in the upper and none more in the commit', async () => {
    const store = await openStore(join(tmp, 'big'));
    const pieces: Buffer[] = [];
    for (let i = 0; i < 25; i++) pieces.push(randomBytes(4 * MiB));
    await store.importLayer(async (b) => {
      await b.addFile('/big.bin', pieces);
      await b.addFile('/small.txt', new TextEncoder().encode('hello'));
    }, { tag: 'big' });
    const before = new Map((await store.backend.listBlobs()).map((b) => [b.digest, b.size]));
    expect([...before.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(100 * MiB);

    const box = await store.createBox('b', { image: 'big' });
    const at = 50 * MiB + 3;
    box.fs.pwrite('/big.bin', at, new Uint8Array([0xab]));
    await box.flush();
    const afterFlush = await store.backend.listBlobs();
    const added = afterFlush.filter((b) => !before.has(b.digest));
    // One data chunk plus the upper's table (which lists the file's chunk digests, not its data).
    expect(added.length).toBe(2);
    const kinds = await Promise.all(added.map(async (b) => {
      try {
        return decodeLayer(await store.backend.getBlob(b.digest), 'x').kind;
      } catch {
        return `chunk:${b.size}`;
      }
    }));
    expect([...kinds].sort()).toEqual([`chunk:${64 * 1024}`, 'upper']);
    const upperTable = added.find((_, i) => kinds[i] === 'upper')!;
    expect(upperTable.size).toBeLessThan(1600 * 34 + 4096);

    const data = box.fs.pread('/big.bin', at - 2, 5);
    const orig = Buffer.concat(pieces).subarray(at - 2, at + 3);
    expect(Array.from(data)).toEqual([orig[0], orig[1], 0xab, orig[3], orig[4]]);

    const seen = new Set(afterFlush.map((b) => b.digest));
    const img = await box.commit({ tag: 'big:v2' });
    const afterCommit = (await store.backend.listBlobs()).filter((b) => !seen.has(b.digest));
    // The layer (its root blob and the page of its one directory) and the image manifest; no file data.
    expect(afterCommit.length).toBe(3);
    expect(afterCommit.every((b) => b.size < 1600 * 34 + 4096)).toBe(true);
    const m = await store.inspectImage(img);
    expect(m.layers.at(-1)!.dataSize).toBe(64 * 1024);

    // Committing straight from memory (no flush in between) also adds exactly one chunk.
    const box2 = await store.createBox('b2', { image: 'big' });
    box2.fs.pwrite('/big.bin', 7, new Uint8Array([1]));
    const seen2 = new Set((await store.backend.listBlobs()).map((b) => b.digest));
    await box2.commit({ tag: 'big:v3' });
    const added2 = (await store.backend.listBlobs()).filter((b) => !seen2.has(b.digest));
    expect(added2.filter((b) => b.size === 64 * 1024).length).toBe(1);
    // Besides it: the box's upper snapshot (commit stores the box first), the layer's root blob and page, and the image manifest.
    expect(added2.length).toBe(5);
    await store.backend.close();
  });
});

describe('corruption', () => {
  it('a corrupted blob fails fsck and every read of it, naming the blob; the rest is unaffected', async () => {
    const dir = join(tmp, 'corrupt');
    const store = await openStore(dir);
    const marker = 'MARKER-' + 'q'.repeat(40) + '-unique content of the victim file';
    const victim = new TextEncoder().encode(marker);
    const digest = ('sha256:' + createHash('sha256').update(victim).digest('hex')) as Digest;
    await store.importLayer(async (b) => {
      await b.addFile('/victim.txt', victim);
      await b.addFile('/other.txt', new TextEncoder().encode('still fine'));
    }, { tag: 'c' });
    await store.createBox('b', { image: 'c' });
    await store.backend.close();

    // Flip one byte of the victim's content inside the pack file that holds it.
    let flipped = false;
    for (const f of await readdir(join(dir, 'packs'))) {
      const p = join(dir, 'packs', f);
      const bytes = await readFile(p);
      const i = bytes.indexOf(Buffer.from(marker));
      if (i >= 0) {
        bytes[i + 10] ^= 0xff;
        await writeFile(p, bytes);
        flipped = true;
      }
    }
    expect(flipped).toBe(true);

    const s2 = await openStore(dir);
    const report = await s2.fsck();
    expect(report.problems.map((p) => p.digest)).toEqual([digest]);
    const box = await s2.openBox('b');
    expect(() => box.fs.readFile('/victim.txt')).toThrow(digest);
    expect(new TextDecoder().decode(box.fs.readFile('/other.txt'))).toBe('still fine');
    await expect(s2.backend.getBlob(digest)).rejects.toThrow(digest);
    await s2.backend.close();

    const cli = resolve('dist/cli.js');
    if (!existsSync(cli)) await exec('node', ['esbuild.config.mjs']);
    const run = async (...a: string[]) => exec(process.execPath, [cli, '--store', dir, ...a]).then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));
    const f = await run('fsck');
    expect(f.code).toBe(1);
    expect(f.stdout).toContain(digest);
    const c = await run('cat', 'b:/victim.txt');
    expect(c.code).toBe(1);
    expect(c.stderr).toContain(digest);
    expect((await run('cat', 'b:/other.txt')).stdout).toBe('still fine');
  });
});

describe('the read path of the directory store', () => {
  it('reads straight into the destination give the same bytes as chunk by chunk: any offset, holes, changed chunks, first and later reads', async () => {
    const store = await openStore(join(tmp, 'reads'));
    const cs = 64 * 1024;
    const content = randomBytes(7 * cs + 1234);
    content.fill(0, 2 * cs, 3 * cs); // a hole
    await store.importLayer(async (b) => b.addFile('/f.bin', content), { tag: 'r' });
    const box = await store.createBox('r', { image: 'r' });
    // One chunk changed in the upper (in memory until flushed), inside a run of stored ones.
    box.fs.pwrite('/f.bin', 5 * cs + 10, new Uint8Array([1, 2, 3]));
    const expected = Buffer.from(content);
    expected.set([1, 2, 3], 5 * cs + 10);
    const h = box.fs.open('/f.bin');
    const rnd = (n: number) => Math.floor(Math.random() * n);
    for (let pass = 0; pass < 3; pass++) {
      for (let i = 0; i < 60; i++) {
        const off = i === 0 ? 0 : rnd(content.length), len = i === 0 ? content.length : rnd(3 * cs);
        const dest = new Uint8Array(len).fill(0xee);
        const n = h.readInto(off, dest);
        expect(n).toBe(Math.max(0, Math.min(len, content.length - off)));
        expect(Buffer.from(dest.subarray(0, n)).equals(expected.subarray(off, off + n)), `pass ${pass}: ${len} bytes at ${off}`).toBe(true);
        expect(dest.subarray(n).every((b) => b === 0xee)).toBe(true);
      }
      if (pass === 1) await box.flush();
    }
    await store.backend.close();
  });
});

describe('pack indexes', () => {
  it('a pack of 10,000 blobs, reopened, finds every blob through its sampled index and no other', async () => {
    const dir = join(tmp, 'many-blobs');
    const store = await openStore(dir);
    const blobs = Array.from({ length: 10_000 }, (_, i) => new TextEncoder().encode(`blob ${i} ${'x'.repeat(i % 50)}`));
    const digests = blobs.map((b) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest);
    await store.backend.lock(() => store.backend.putBlobs(blobs.map((data, i) => ({ digest: digests[i]!, data }))));
    await store.backend.close();
    const again = await openStore(dir);
    try {
      // In a random order, so blocks of the index come and go from its cache.
      const order = [...digests.keys()].sort(() => Math.random() - 0.5);
      for (const i of order) {
        expect(again.backend.hasBlob(digests[i]!)).toBe(true);
        expect(Buffer.from(again.backend.readBlobSync(digests[i]!)).equals(Buffer.from(blobs[i]!))).toBe(true);
      }
      for (let i = 0; i < 200; i++) {
        const absent = `sha256:${createHash('sha256').update(`absent ${i}`).digest('hex')}` as Digest;
        expect(again.backend.hasBlob(absent)).toBe(false);
      }
      expect((await again.backend.listBlobs()).length).toBe(10_000);
      expect((await again.fsck()).problems).toEqual([]);
    } finally {
      await again.backend.close();
    }
  });
});
