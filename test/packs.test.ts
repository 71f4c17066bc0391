// Packs of the directory store merge as they are written (geometrically), and
// readers in other processes never miss a blob while they do.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { type Digest, digestOf } from '../src/digest.js';
import { openDirBackend } from '../runtime/node/dir-backend.js';

const roots: string[] = [];
function tmpStore(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'layerbox-packs-'));
  roots.push(root);
  return path.join(root, 'store');
}
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

/** Batch `i`: a few small blobs whose content the reader process can rebuild from `i` alone. */
function batch(i: number): Array<{ digest: Digest; data: Uint8Array }> {
  return Array.from({ length: 1 + (i % 4) }, (_, j) => {
    const data = new TextEncoder().encode(`batch ${i} blob ${j} `.repeat(1 + ((i * 7 + j) % 13)));
    return { digest: digestOf(data), data };
  });
}

const packFiles = (store: string) => fs.readdirSync(path.join(store, 'packs')).filter((n) => n.endsWith('.pack')).sort();
const packSizes = (store: string) => packFiles(store).map((n) => fs.statSync(path.join(store, 'packs', n)).size).sort((a, b) => a - b);
const listed = (store: string) => (JSON.parse(fs.readFileSync(path.join(store, 'packs.json'), 'utf8')).packs as string[]).slice().sort();

/** The geometric rule: sorted by size, each pack at least twice the next smaller; so at most log2(total / smallest) + 1 packs. */
function expectGeometric(store: string): void {
  const sizes = packSizes(store);
  for (let k = 1; k < sizes.length; k++) expect(sizes[k]).toBeGreaterThanOrEqual(2 * sizes[k - 1]!);
  const total = sizes.reduce((a, b) => a + b, 0);
  expect(sizes.length).toBeLessThanOrEqual(Math.floor(Math.log2(total / sizes[0]!)) + 2);
}

/** A pack as an older layerbox wrote it, one per flush: header, blobs, index (sorted or in insertion order), footer. */
function writeOldPack(store: string, blobs: Array<{ digest: Digest; data: Uint8Array }>, sorted: boolean): void {
  const head = Buffer.alloc(12); head.write('LBXPACK\0', 'latin1'); head.writeUInt32LE(1, 8);
  const parts: Buffer[] = [head];
  let pos = 12;
  const entries = blobs.map(({ digest, data }) => {
    const e = { key: Buffer.from(digest.slice(7), 'hex'), offset: pos, length: data.length };
    parts.push(Buffer.from(data)); pos += data.length;
    return e;
  });
  if (sorted) entries.sort((a, b) => a.key.compare(b.key));
  const index = Buffer.alloc(4 + 48 * entries.length);
  index.writeUInt32LE(entries.length, 0);
  entries.forEach((e, i) => { e.key.copy(index, 4 + i * 48); index.writeBigUInt64LE(BigInt(e.offset), 36 + i * 48); index.writeBigUInt64LE(BigInt(e.length), 44 + i * 48); });
  const foot = Buffer.alloc(16); foot.writeBigUInt64LE(BigInt(pos), 0); foot.write(sorted ? 'LBXPIDS\0' : 'LBXPIDX\0', 8, 'latin1');
  const name = `${createHash('sha256').update(index).digest('hex')}.pack`;
  fs.writeFileSync(path.join(store, 'packs', name), Buffer.concat([...parts, index, foot]));
}

describe('directory store packs', () => {
  it('stays at O(log bytes) packs over 1,000 batches, every blob intact', async () => {
    const store = tmpStore();
    const b = await openDirBackend(store);
    const all: Array<{ digest: Digest; data: Uint8Array }> = [];
    let most = 0;
    for (let i = 0; i < 1000; i++) {
      const x = batch(i);
      all.push(...x);
      await b.lock(() => b.putBlobs(x));
      most = Math.max(most, packFiles(store).length);
    }
    expectGeometric(store);
    expect(most).toBeLessThanOrEqual(20);
    expect(listed(store)).toEqual(packFiles(store));
    for (const x of all) expect(Buffer.from(b.readBlobSync(x.digest)).equals(Buffer.from(x.data))).toBe(true);
    await b.close();
    // A fresh process's view: every blob found, read and checked against its digest; fsck clean.
    const again = await openDirBackend(store, { create: false });
    expect((await again.stats()).blobs).toBe(all.length);
    for (const x of all) expect(Buffer.from(again.readBlobSync(x.digest)).equals(Buffer.from(x.data))).toBe(true);
    expect(again.hasBlob(digestOf(new TextEncoder().encode('never stored')))).toBe(false);
    expect(await again.verify()).toEqual([]);
    await again.close();
  }, 600_000); // a thousand durable writes: seconds on an idle disk, minutes on a busy one

  it('merges a store of many small packs, written by an older layerbox, on its next write', async () => {
    const store = tmpStore();
    await (await openDirBackend(store)).close();
    const old: Array<{ digest: Digest; data: Uint8Array }> = [];
    for (let i = 0; i < 60; i++) {
      const x = batch(i);
      old.push(...x);
      writeOldPack(store, x, i % 3 !== 0); // some with the older, unsorted index
    }
    // The same blob in two packs (two racing writers could leave that): kept once.
    const extra = batch(2000);
    old.push(...extra);
    writeOldPack(store, [...batch(7), ...extra], false);
    const before = packFiles(store);
    expect(before).toHaveLength(61);
    const b = await openDirBackend(store, { create: false });
    const fresh = batch(1000);
    await b.lock(() => b.putBlobs(fresh));
    expect(packFiles(store).filter((n) => before.includes(n)).length).toBeLessThan(before.length / 2);
    expectGeometric(store);
    expect(listed(store)).toEqual(packFiles(store));
    await b.close();
    const again = await openDirBackend(store, { create: false });
    for (const x of [...old, ...fresh]) expect(Buffer.from(again.readBlobSync(x.digest)).equals(Buffer.from(x.data))).toBe(true);
    expect((await again.stats()).blobs).toBe(old.length + fresh.length);
    expect(await again.verify()).toEqual([]);
    await again.close();
  });

  it('never loses a blob for a reader in another process while packs merge', async () => {
    const store = tmpStore();
    const b = await openDirBackend(store);
    const log = path.join(path.dirname(store), 'batches');
    fs.writeFileSync(log, '');
    const write = async (i: number) => {
      await b.lock(() => b.putBlobs(batch(i)));
      fs.appendFileSync(log, `${i}\n`); // told to the reader only once stored
    };
    let i = 0;
    for (; i < 40; i++) await write(i);

    // The reader rebuilds each batch from its number; every round it reads every batch written so far
    // (the newest through a miss and a rescan, older ones from packs that may be merging away right now),
    // with a backend it keeps and, every third round, with a fresh one.
    const here = path.dirname(fileURLToPath(import.meta.url));
    const source = `
      import * as fs from 'node:fs';
      import { openDirBackend } from './runtime/node/dir-backend.ts';
      import { digestOf } from './src/digest.ts';
      // As batch() above.
      function batch(i) {
        return Array.from({ length: 1 + (i % 4) }, (_, j) => {
          const data = new TextEncoder().encode(('batch ' + i + ' blob ' + j + ' ').repeat(1 + ((i * 7 + j) % 13)));
          return { digest: digestOf(data), data };
        });
      }
      const [store, log] = process.argv.slice(2);
      let stop = false;
      process.stdin.on('data', () => { stop = true; });
      let b = await openDirBackend(store, { create: false });
      let round = 0, fast = 0;
      try {
        while (!stop) {
          if (round % 3 === 2) { await b.close(); b = await openDirBackend(store, { create: false }); }
          const done = fs.readFileSync(log, 'utf8').split('\\n').filter(Boolean).map(Number);
          for (const n of done) {
            const blobs = batch(n);
            for (const x of blobs) {
              const got = b.readBlobSync(x.digest);
              if (Buffer.compare(Buffer.from(got), Buffer.from(x.data)) !== 0) throw new Error('batch ' + n + ' read back wrong');
              if (!b.hasBlob(x.digest)) throw new Error('hasBlob says batch ' + n + ' is missing');
            }
            const whole = Buffer.concat(blobs.map((x) => x.data));
            const into = new Uint8Array(whole.length);
            if (b.readBlobsInto(blobs.map((x) => x.digest), blobs.map((x) => x.data.length), into, 0)) {
              if (Buffer.compare(Buffer.from(into), whole) !== 0) throw new Error('batch ' + n + ' read back wrong in one call');
              fast++;
            }
          }
          console.log('round ' + round++ + ' ' + done.length + ' ' + fast);
          await new Promise((r) => setImmediate(r));
        }
      } catch (e) { console.log('error ' + e.message); process.exit(1); }
      console.log('done ' + round);
      process.exit(0);
    `;
    const script = path.join(path.dirname(store), 'reader.mjs');
    buildSync({ stdin: { contents: source, resolveDir: path.resolve(here, '..'), loader: 'ts' }, bundle: true, platform: 'node', format: 'esm', outfile: script, logLevel: 'silent' });
    const child = spawn(process.execPath, [script, store, log], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let rounds = 0, exited = false;
    const exit = new Promise<number | null>((r) => child.on('exit', (code) => { exited = true; r(code); }));
    child.stdout!.setEncoding('utf8');
    let rest = '';
    child.stdout!.on('data', (c: string) => {
      const parts = (rest + c).split('\n');
      rest = parts.pop()!;
      for (const l of parts) { lines.push(l); if (l.startsWith('round ')) rounds++; }
    });

    // Keep writing (each batch may merge packs the reader is reading) until the reader has done
    // 25 rounds and at least 60 packs were merged away under it.
    const known = new Set(packFiles(store));
    let merged = 0;
    while (!exited && (rounds < 25 || merged < 60) && i < 3000) {
      await write(i++);
      const now = packFiles(store);
      merged += [...known].filter((n) => !now.includes(n)).length;
      known.clear();
      for (const n of now) known.add(n);
    }
    child.stdin!.end('stop\n');
    const code = await exit;
    expect(lines.filter((l) => l.startsWith('error'))).toEqual([]);
    expect(code).toBe(0);
    expect(merged).toBeGreaterThanOrEqual(60);
    expect(lines.at(-1)).toMatch(/^done \d+$/);
    // The reader's last rounds covered batches written while it read (it saw more than the first 40).
    const last = lines.filter((l) => l.startsWith('round ')).at(-1)!.split(' ');
    expect(Number(last[2])).toBeGreaterThan(40);
    expect(Number(last[3])).toBeGreaterThan(0);
    expectGeometric(store);
    expect(await b.verify()).toEqual([]);
    await b.close();
  });
});
