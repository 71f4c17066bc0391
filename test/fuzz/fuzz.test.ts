// Fuzzing of the parsers hostile input reaches: the layer-table reader (v1
// tables, and tree roots and directory pages read whole or lazily), the tar
// importer, the OCI/docker archive importer and the guest path resolver. Each property must
// either succeed or fail with layerbox's own error (LayerboxError/FsError),
// never crash or hang. `npm test` runs them briefly; `npm run fuzz` runs each
// for FUZZ_SECONDS (default 600).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FsError, LayerboxError, LayerBuilder, addTarBytes, decodeLayer, encodeLayer, memoryStore, readTar, writeTar, type LayerTable, type TarEntry } from '../../src/index.js';
import { type Digest, digestOf } from '../../src/digest.js';
import { decodeRoot, encodeLayerTree, readLayerTable } from '../../src/layer-tree.js';
import { mountLowerTree } from '../../src/overlay/tree.js';
import { exportOci, importOci } from '../../src/oci/index.js';
import { gunzipSync, gzipSync } from 'node:zlib';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 3);
const budget = { interruptAfterTimeLimit: SECONDS * 1000, numRuns: Number.MAX_SAFE_INTEGER, markInterruptAsFailure: false };

const ours = (e: unknown) => e instanceof LayerboxError || e instanceof FsError;
function expectOwnError(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!ours(e)) throw e;
  }
}
async function expectOwnErrorAsync(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!ours(e)) throw e;
  }
}

/** A valid layer table to mutate. */
function sampleTable(): Uint8Array {
  const t: LayerTable = {
    kind: 'layer',
    chunkSize: 8,
    entries: [
      { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1n },
      { path: 'a', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 2n, opaque: true },
      { path: 'a/f', type: 'file', mode: 0o644, uid: 1, gid: 2, mtime: 3n, size: 9, chunks: new Map([[0, digestOf(new Uint8Array(8))]]) },
      { path: 'a/l', type: 'hardlink', mode: 0o644, uid: 1, gid: 2, mtime: 3n, target: 'a/f' },
      { path: 'b', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 4n, redirect: 'z' },
      { path: 's', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 5n, target: '../x' },
      { path: 'w', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0n },
    ],
  };
  return encodeLayer(t);
}

type ByteOp = { at: number; byte: number; op: 'set' | 'cut' | 'insert' };
const byteOps = fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), op: fc.constantFrom<ByteOp['op']>('set', 'cut', 'insert') }), { minLength: 1, maxLength: 8 });
function applyOps(base: Uint8Array, ms: ByteOp[]): Uint8Array {
  let b = Array.from(base);
  for (const m of ms) {
    const i = m.at % (b.length + 1);
    if (m.op === 'set' && b.length) b[i % b.length] = m.byte;
    else if (m.op === 'cut') b = b.slice(0, i);
    else b.splice(i, 0, m.byte);
  }
  return new Uint8Array(b);
}
const mutate = (base: Uint8Array) => byteOps.map((ms) => applyOps(base, ms));

describe('fuzz', () => {
  it('layer-table reader: random and mutated tables decode or fail with a clear error', () => {
    const base = sampleTable();
    fc.assert(fc.property(fc.oneof(mutate(base), fc.uint8Array({ maxLength: 300 })), (bytes) => expectOwnError(() => decodeLayer(bytes, 'fuzz'))), budget);
  });

  it('layer-tree reader: mutated layer roots and directory pages read (whole or lazily) or fail with a clear error', async () => {
    const t = decodeLayer(sampleTable(), 'sample');
    t.entries.splice(1, 0, { path: 'a/d', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1n });
    t.entries.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
    const tree = encodeLayerTree(t, (b) => digestOf(b));
    const blobs = [tree.root, ...tree.pages.map((p) => p.data)];
    await fc.assert(
      fc.asyncProperty(fc.nat(), byteOps, fc.array(fc.constantFrom('a', 'a/f', 'a/l', 'a/d', 'b', 's', 'w', 'x'), { maxLength: 4 }), async (which, ops, lookups) => {
        const k = which % blobs.length;
        const bytes = blobs.map((b, i) => (i === k ? applyOps(b, ops) : b));
        // The mutated page keeps its name: as if its digest matched (the store checks digests; this is what comes after).
        const byDigest = new Map(tree.pages.map((p, i) => [p.digest, bytes[i + 1]!]));
        const get = (d: Digest) => {
          const b = byDigest.get(d);
          if (!b) throw new LayerboxError(`no page ${d}`);
          return b;
        };
        await expectOwnErrorAsync(() => readLayerTable(bytes[0]!, 'fuzz', async (d) => get(d)));
        expectOwnError(() => {
          const lower = mountLowerTree(decodeRoot(bytes[0]!, 'fuzz'), digestOf(bytes[0]!), 0, get);
          for (const p of lookups) {
            let d: any = lower.root;
            for (const c of p.split('/')) d = d?.kind === 'dir' ? d.children.get(c) : undefined;
          }
        });
      }),
      budget,
    );
  });

  it('tar importer: mutated archives import or fail with a clear error', async () => {
    const entries: TarEntry[] = [
      { path: 'dir', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1 },
      { path: 'dir/file', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, data: new TextEncoder().encode('hello world') },
      { path: 'dir/.wh.gone', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, data: new Uint8Array() },
      { path: 'dir/link', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1, linkname: 'dir/file' },
      { path: 'sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1, linkname: '/etc/passwd' },
      { path: 'x'.repeat(120) + '/long', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, data: new Uint8Array(600) },
    ];
    const base = writeTar(entries);
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutate(base), fc.uint8Array({ maxLength: 2048 })), async (bytes) => {
        await expectOwnErrorAsync(async () => {
          readTar(bytes);
          const b = new LayerBuilder(8, (x) => digestOf(x), async () => {});
          await addTarBytes(b, bytes);
          decodeLayer(encodeLayer(b.table()), 'rebuilt');
        });
      }),
      budget,
    );
  });

  it('OCI and docker importer: archives with mutated JSON documents (re-hashed so digests still match) import or fail with a clear error', async () => {
    const src = memoryStore({ chunkSize: 8 });
    await src.importLayer(async (b) => {
      b.addDir('/etc');
      await b.addFile('/etc/motd', new TextEncoder().encode('hi\n'));
      b.addSymlink('/etc/link', 'motd');
    }, { tag: 'base:1' });
    const box = await src.createBox('b', { image: 'base:1' });
    box.fs.unlink('/etc/link');
    box.fs.writeFile('/new', 'new');
    await box.commit({ tag: 'base:2' });
    const archives: Array<Map<string, Uint8Array>> = [];
    for (const format of ['oci', 'docker'] as const) {
      const entries = await exportOci(src, ['base:2'], { format, gzip: (t) => new Uint8Array(gzipSync(t)) });
      archives.push(new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e.data!])));
    }
    const dec = new TextDecoder(), enc = new TextEncoder();
    const isJson = (path: string, b: Uint8Array) => path.endsWith('.json') || path === 'oci-layout' || (path.startsWith('blobs/') && b[0] === 0x7b);
    /** Replaces the value at a random path of a JSON document (chosen by `picks`). */
    const edit = (doc: any, picks: number[], value: unknown, del: boolean): any => {
      if (doc === null || typeof doc !== 'object' || !picks.length) return del ? undefined : value;
      const keys = Object.keys(doc);
      if (!keys.length) return value;
      const k = keys[picks[0]! % keys.length]!;
      const out: any = Array.isArray(doc) ? [...doc] : { ...doc };
      const v = edit(doc[k], picks.slice(1), value, del);
      if (v === undefined) Array.isArray(out) ? out.splice(Number(k), 1) : delete out[k];
      else out[k] = v;
      return out;
    };
    /** After editing a blob, renames it to its new digest and points every document that named the old one at it. */
    const rehash = (files: Map<string, Uint8Array>, oldPath: string) => {
      const data = files.get(oldPath)!;
      const hex = digestOf(data).slice(7), old = oldPath.slice('blobs/sha256/'.length);
      files.delete(oldPath);
      files.set(`blobs/sha256/${hex}`, data);
      for (const [p, b] of [...files]) {
        if (!isJson(p, b)) continue;
        const text = dec.decode(b);
        if (!text.includes(old)) continue;
        const fixed = enc.encode(text.replaceAll(old, hex).replace(new RegExp(`("digest":"sha256:${hex}","size":)\\d+`), `$1${data.length}`));
        files.set(p, fixed);
        if (p.startsWith('blobs/sha256/')) rehash(files, p);
      }
    };
    const outcomes = { tried: 0, imported: 0 };
    const mutation = fc.record({
      which: fc.nat(),
      picks: fc.array(fc.nat(), { maxLength: 6 }),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('../../etc/passwd', '/abs', 'sha256:00', 'application/vnd.oci.image.index.v1+json', 'x:1', -1, 2 ** 53)),
      del: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (kind, ms) => {
        const files = new Map(archives[kind]);
        for (const m of ms) {
          const docs = [...files].filter(([p, b]) => isJson(p, b)).map(([p]) => p).sort();
          const path = docs[m.which % docs.length]!;
          let doc: unknown;
          try {
            doc = JSON.parse(dec.decode(files.get(path)!));
          } catch {
            continue;
          }
          const edited = edit(doc, m.picks, m.value, m.del);
          files.set(path, enc.encode(JSON.stringify(edited ?? null)));
          if (path.startsWith('blobs/sha256/')) rehash(files, path);
        }
        const dst = memoryStore({ chunkSize: 8 });
        outcomes.tried++;
        await expectOwnErrorAsync(async () => {
          const done = await importOci(dst, async (p) => files.get(p) ?? null, { gunzip: (b) => new Uint8Array(gunzipSync(b)) });
          // Whatever was imported is a whole, readable image.
          for (const d of done) {
            const b = await dst.createBox(`t${d.digest.slice(7, 15)}`, { image: d.digest });
            b.fs.readdir('/');
          }
          outcomes.imported++;
        });
        const report = await dst.fsck();
        expect(report.problems).toEqual([]);
      }),
      budget,
    );
    // The mutations reach both ends: some archives still import, some are refused.
    expect(outcomes.imported).toBeGreaterThan(0);
    expect(outcomes.imported).toBeLessThan(outcomes.tried);
    console.log(`OCI importer: ${outcomes.tried} archives, ${outcomes.imported} imported`);
  });

  it('path resolver: any path over symlink-laden trees resolves inside the box or fails with an errno', async () => {
    const store = memoryStore({ chunkSize: 8 });
    await store.importLayer(async (b) => {
      b.addDir('/a/b/c');
      await b.addFile('/a/f', new TextEncoder().encode('f'));
      b.addSymlink('/a/up', '../../../..');
      b.addSymlink('/a/abs', '/a/b');
      b.addSymlink('/loop', 'loop');
      b.addSymlink('/a/b/c/back', '../../..');
    }, { tag: 'x' });
    const box = await store.createBox('b', { image: 'x' });
    const comp = fc.oneof(fc.constantFrom('a', 'b', 'c', 'f', 'up', 'abs', 'loop', 'back', '..', '.', '', 'nope'), fc.string({ maxLength: 4 }));
    await fc.assert(
      fc.asyncProperty(fc.array(comp, { maxLength: 12 }), fc.boolean(), fc.constantFrom('stat', 'readdir', 'mkdir', 'write', 'symlink', 'rename'), async (parts, abs, op) => {
        const p = (abs ? '/' : '') + parts.join('/');
        expectOwnError(() => {
          if (op === 'stat') box.fs.stat(p);
          else if (op === 'readdir') box.fs.readdir(p);
          else if (op === 'mkdir') box.fs.mkdir(p);
          else if (op === 'write') box.fs.writeFile(p, 'x');
          else if (op === 'symlink') box.fs.symlink(parts.join('/'), p);
          else box.fs.rename(p, '/a/renamed');
        });
      }),
      budget,
    );
    // Whatever happened, the root still only holds what the image and the operations made.
    expect(box.fs.readdir('/').every((e) => typeof e.name === 'string')).toBe(true);
  });
});

describe('regressions found by fuzzing', () => {
  const docker = (entry: object): Map<string, Uint8Array> => {
    const layer = writeTar([{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new TextEncoder().encode('f') }]);
    const config = { rootfs: { type: 'layers', diff_ids: [digestOf(layer)] } };
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    return new Map([['manifest.json', enc([{ Config: 'c.json', Layers: ['l.tar'], ...entry }])], ['c.json', enc(config)], ['l.tar', layer]]);
  };
  const load = (files: Map<string, Uint8Array>) => importOci(memoryStore(), async (p) => files.get(p) ?? null, { gunzip: (b) => new Uint8Array(gunzipSync(b)) });

  it('a docker archive whose RepoTags holds an object that cannot become a string is refused clearly', async () => {
    await expect(load(docker({ RepoTags: [{ toString: false }] }))).rejects.toThrow(/RepoTags: a reference must be a string, got \{"toString":false\}/);
    await expect(load(docker({ RepoTags: [7] }))).rejects.toBeInstanceOf(LayerboxError);
    expect((await load(docker({ RepoTags: ['ok:1'] })))[0]!.tags).toEqual(['ok:1']);
  });

  it('an image manifest with fields of the wrong type is refused clearly', async () => {
    const { decodeImage } = await import('../../src/image.js');
    const base = { magic: 'layerbox-image', version: 1, chunkSize: 8, created: '', parent: null, config: { env: [], workingDir: '/', cmd: [] }, layers: [{ digest: digestOf(new Uint8Array()), size: 1, dataSize: 0, entries: 1 }], history: [] };
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    expect(decodeImage(enc(base), 'm').chunkSize).toBe(8);
    for (const bad of [{ chunkSize: -1 }, { chunkSize: 'x' }, { config: { env: 'PATH=/' } }, { config: { env: [{ toString: false }] } }, { layers: [{ digest: digestOf(new Uint8Array()), size: { toString: false } }] }, { history: {} }, { history: [null] }, { created: 5 }])
      expect(() => decodeImage(enc({ ...base, ...bad }), 'm'), JSON.stringify(bad)).toThrow(LayerboxError);
  });
});
