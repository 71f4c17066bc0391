// A hostile bundle's index: box limits, records, names and tags are checked
// before anything is stored; a refused import is one line and leaves the
// store as it was. Also: two indexes in one bundle, an OCI index naming nothing.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TarEntry, readTar, writeTar } from '../../runtime/node/index.js';
import { makeTree } from '../fixtures.js';
import { cli, expectOneLine } from './cli-run.js';

let tmp: string;
let target: string;
let entries: TarEntry[];
let index: any;
let n = 0;

const ok = async (store: string, ...argv: string[]) => {
  const r = await cli(store, ...argv);
  expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
};

/** What a refused import must not change: the refs document and the set of packs. */
const snapshot = (s: string) => ({ refs: readFileSync(join(s, 'refs.json'), 'utf8'), packs: readdirSync(join(s, 'packs')).sort() });

/** A bundle like the real one with its index rewritten by `edit`; `extra` entries appended. */
function bundle(edit: (doc: any) => unknown, extra: TarEntry[] = []): string {
  const doc = edit(structuredClone(index));
  const out = entries.map((e) => (e.path === 'layerbox-bundle.json' ? { ...e, data: new TextEncoder().encode(JSON.stringify(doc)) } : e));
  const file = join(tmp, `bundle-${n++}.lbx`);
  writeFileSync(file, writeTar([...out, ...extra]));
  return file;
}
const box = (edit: (b: any) => unknown) => (d: any) => ({ ...d, boxes: [edit(d.boxes[0])] });
const limits = (l: unknown) => box((b) => ({ ...b, record: { ...b.record, limits: l } }));

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lb-bundle-'));
  const src = join(tmp, 'src');
  target = join(tmp, 'target');
  await makeTree(join(tmp, 'tree'));
  writeFileSync(join(tmp, 'other.txt'), 'other\n');
  await ok(src, 'image', 'import', join(tmp, 'tree'), '--tag', 't:1');
  await ok(src, 'box', 'create', 'b1', '--image', 't:1', '--max-files', '100', '--max-upper-bytes', '1M');
  await ok(src, 'cp', join(tmp, 'other.txt'), 'b1:/other.txt');
  await ok(src, 'export', 't:1', '--box', 'b1', '-o', join(tmp, 'real.lbx'));
  entries = readTar(new Uint8Array(readFileSync(join(tmp, 'real.lbx'))));
  index = JSON.parse(new TextDecoder().decode(entries.find((e) => e.path === 'layerbox-bundle.json')!.data!));
  // The target holds something of its own, which a refused import must leave as it is.
  await ok(target, 'image', 'import', join(tmp, 'tree'), '--tag', 'mine:1');
  await ok(target, 'box', 'create', 'keep', '--image', 'mine:1');
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const refused: Array<{ name: string; file: () => string; says: RegExp }> = [
  { name: 'maxFiles -3', file: () => bundle(limits({ maxFiles: -3 })), says: /maxFiles/ },
  { name: 'maxFiles as a string', file: () => bundle(limits({ maxFiles: '3' })), says: /maxFiles/ },
  { name: 'maxFiles 1.5', file: () => bundle(limits({ maxFiles: 1.5 })), says: /maxFiles/ },
  { name: 'maxFiles null', file: () => bundle(limits({ maxFiles: null })), says: /maxFiles/ },
  { name: 'maxFiles past its bound (2^40)', file: () => bundle(limits({ maxFiles: 2 ** 40 })), says: /maxFiles/ },
  { name: 'maxUpperBytes past a safe integer', file: () => bundle(limits({ maxUpperBytes: 2 ** 60 })), says: /maxUpperBytes/ },
  { name: 'limits as a string', file: () => bundle(limits('none')), says: /limit/ },
  { name: 'an unknown limit', file: () => bundle(limits({ maxProcesses: 1 })), says: /unknown .*limit/ },
  { name: 'a box record that is null', file: () => bundle(box((b) => ({ ...b, record: null }))), says: /box b1/ },
  { name: 'a box image that is not a digest', file: () => bundle(box((b) => ({ ...b, record: { ...b.record, image: 'sha256:zz' } }))), says: /image/ },
  { name: 'a box upper that is a number', file: () => bundle(box((b) => ({ ...b, record: { ...b.record, upper: 5 } }))), says: /upper/ },
  { name: 'a box name that is a path', file: () => bundle(box((b) => ({ ...b, name: '../evil' }))), says: /box name/ },
  { name: 'a box name that is a number', file: () => bundle(box((b) => ({ ...b, name: 7 }))), says: /no name/ },
  { name: 'a box named twice', file: () => bundle((d) => ({ ...d, boxes: [d.boxes[0], d.boxes[0]] })), says: /twice/ },
  { name: 'images that are not a list', file: () => bundle((d) => ({ ...d, images: { a: d.images[0] } })), says: /not a list/ },
  { name: 'an image entry that is null', file: () => bundle((d) => ({ ...d, images: [null] })), says: /image 1/ },
  { name: 'a tag that is a number', file: () => bundle((d) => ({ ...d, images: [{ ...d.images[0], tags: [5] }] })), says: /not a string/ },
  { name: 'a tag that is not a tag', file: () => bundle((d) => ({ ...d, images: [{ ...d.images[0], tags: ['No Such/Tag!!'] }] })), says: /image 1/ },
  { name: 'an index that is an array', file: () => bundle((d) => [d]), says: /not a layerbox bundle/ },
  { name: 'a version that is a string', file: () => bundle((d) => ({ ...d, version: '1' })), says: /version/ },
  {
    name: 'two layerbox-bundle.json',
    // The second would slip an extra tag past whatever checked the first.
    file: () => bundle((d) => d, [{ path: 'layerbox-bundle.json', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new TextEncoder().encode(JSON.stringify({ ...index, images: [{ ...index.images[0], tags: ['evil:1'] }] })) }]),
    says: /2 layerbox-bundle\.json/,
  },
];

describe('a hostile bundle index', () => {
  it.each(refused)('$name: refused with one line, the store unchanged', async (c) => {
    const before = snapshot(target);
    expectOneLine(await cli(target, 'import', c.file()), c.name, c.says);
    expect(snapshot(target)).toEqual(before);
    const boxes = JSON.parse((await ok(target, 'box', 'ls', '--json')).stdout);
    expect(boxes.map((b: { name: string }) => b.name)).toEqual(['keep']);
  });

  it('the real bundle imports, its limits kept (the control)', async () => {
    const s = join(tmp, 'control');
    await ok(s, 'import', bundle((d) => d));
    const [b] = JSON.parse((await ok(s, 'box', 'ls', '--json')).stdout);
    expect(b).toMatchObject({ name: 'b1', limits: { maxFiles: 100, maxUpperBytes: 1 << 20 } });
    expect((await ok(s, 'cat', 'b1:/other.txt')).stdout).toBe('other\n');
  });
});

describe('hostile blobs named by their true digest', () => {
  /** A bundle whose one image is `manifest` (a blob stored under its own sha256), pointing at `extra` blobs. */
  const withImage = (manifest: string, extra: string[] = []) => {
    const blob = (text: string): TarEntry & { digest: string } => {
      const data = new TextEncoder().encode(text);
      const hex = createHash('sha256').update(data).digest('hex');
      return { path: `blobs/sha256/${hex}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data, digest: `sha256:${hex}` };
    };
    const m = blob(manifest);
    return bundle((d) => ({ ...d, images: [{ digest: m.digest, tags: ['hostile:1'] }], boxes: [] }), [m, ...extra.map(blob)]);
  };
  const layer = 'sha256:' + createHash('sha256').update('not a layer table').digest('hex');
  const manifest = (over: object) => JSON.stringify({ magic: 'layerbox-image', version: 1, chunkSize: 65536, layers: [{ digest: layer, size: 1, dataSize: 0, entries: 0 }], config: {}, history: [], parent: null, created: '', ...over });

  it.each([
    { name: 'a manifest that is JSON null', file: () => withImage('null') },
    { name: 'a manifest whose layers are a string', file: () => withImage(manifest({ layers: 'all' })) },
    { name: 'a manifest whose chunk size is a string', file: () => withImage(manifest({ chunkSize: '65536' })) },
    { name: 'a manifest whose history is longer than its layers', file: () => withImage(manifest({ history: [{ created: '', createdBy: 'x', layer }, { created: '', createdBy: 'y', layer }] }), ['not a layer table']) },
    { name: 'a layer table that is garbage', file: () => withImage(manifest({}), ['not a layer table']) },
  ])('$name: refused with one line, no ref changed', async (c) => {
    const before = snapshot(target);
    expectOneLine(await cli(target, 'import', c.file()), c.name);
    expect(snapshot(target).refs).toEqual(before.refs);
    expect((await cli(target, 'fsck')).code).toBe(0);
  });
});

describe('an OCI layout', () => {
  it('whose index lists no manifests is refused, not an empty success', async () => {
    const layout = join(tmp, 'empty-oci');
    mkdirSync(layout);
    writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const before = snapshot(target);
    expectOneLine(await cli(target, 'import', layout), 'empty OCI index', /index\.json lists no manifests/);
    expect(snapshot(target)).toEqual(before);
  });
});
