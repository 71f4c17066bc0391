// A damaged or hostile store directory: every record read from it is checked
// before use, and every command answers with one clear line (or a clean fsck
// report), never a stack trace, a JavaScript TypeError or a hang.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTree } from '../fixtures.js';
import { cli, cliWith, expectNoCrash, expectOneLine } from './cli-run.js';

let tmp: string;
let pristine: string;
let n = 0;

const mkfifo = (p: string) => execFileSync('mkfifo', [p]);
const packsOf = (s: string) => readdirSync(join(s, 'packs')).filter((f) => f.endsWith('.pack')).map((f) => join(s, 'packs', f));
const refsPath = (s: string) => join(s, 'refs.json');
/** Rewrites refs.json through `edit` (given the parsed document, returns the new one). */
const refs = (edit: (doc: any) => unknown) => (s: string) => writeFileSync(refsPath(s), JSON.stringify(edit(JSON.parse(readFileSync(refsPath(s), 'utf8')))));
const box = (edit: (rec: any) => unknown) => refs((d) => ({ ...d, boxes: { ...d.boxes, b1: edit(d.boxes.b1) } }));
const replaceWith = (make: (p: string) => void, pick: (s: string) => string[]) => (s: string) => {
  for (const p of pick(s)) {
    rmSync(p, { recursive: true, force: true });
    make(p);
  }
};

interface Case { name: string; corrupt: (store: string) => void; /** A command that must be refused with one line. */ fails: string[]; says?: RegExp }

const REFS_CMD = ['box', 'ls'];
const BLOB_CMD = ['cat', 'b1:/etc/config.txt'];
const cases: Case[] = [
  { name: 'refs.json is JSON null', corrupt: (s) => writeFileSync(refsPath(s), 'null'), fails: REFS_CMD, says: /refs\.json/ },
  { name: 'refs.json is an array', corrupt: (s) => writeFileSync(refsPath(s), '[1,2]'), fails: REFS_CMD, says: /refs\.json/ },
  { name: 'refs.json is a string', corrupt: (s) => writeFileSync(refsPath(s), '"layerbox-refs"'), fails: REFS_CMD, says: /refs\.json/ },
  { name: 'refs.json is empty', corrupt: (s) => writeFileSync(refsPath(s), ''), fails: REFS_CMD, says: /not valid JSON/ },
  { name: 'refs.json is truncated', corrupt: (s) => truncateSync(refsPath(s), 40), fails: REFS_CMD, says: /not valid JSON/ },
  { name: 'refs version is a string', corrupt: refs((d) => ({ ...d, version: '1' })), fails: REFS_CMD, says: /version/ },
  { name: 'tags is an array', corrupt: refs((d) => ({ ...d, tags: [d.tags] })), fails: REFS_CMD, says: /tags or boxes/ },
  { name: 'boxes is null', corrupt: refs((d) => ({ ...d, boxes: null })), fails: REFS_CMD, says: /tags or boxes/ },
  { name: 'a tag is a number', corrupt: refs((d) => ({ ...d, tags: { 't:1': 5 } })), fails: ['image', 'ls'], says: /tag "t:1"/ },
  { name: 'a tag is an object', corrupt: refs((d) => ({ ...d, tags: { 't:1': { digest: d.tags['t:1'] } } })), fails: ['image', 'ls'], says: /tag "t:1"/ },
  { name: 'a tag name is not a tag', corrupt: refs((d) => ({ ...d, tags: { ...d.tags, ['__proto__']: d.tags['t:1'] } })), fails: ['image', 'ls'], says: /tag/ },
  { name: 'a box record is null', corrupt: box(() => null), fails: REFS_CMD, says: /box b1/ },
  { name: 'a box record is an array', corrupt: box((r) => [r]), fails: REFS_CMD, says: /box b1/ },
  { name: 'a box record lacks its image', corrupt: box(({ image: _, ...r }) => r), fails: REFS_CMD, says: /box b1 has no valid image/ },
  { name: 'a box record lacks its upper', corrupt: box(({ upper: _, ...r }) => r), fails: BLOB_CMD, says: /box b1 has no valid upper/ },
  { name: 'a box upper is a number', corrupt: box((r) => ({ ...r, upper: 7 })), fails: BLOB_CMD, says: /upper/ },
  { name: 'a box created is a number', corrupt: box((r) => ({ ...r, created: 0 })), fails: REFS_CMD, says: /creation time/ },
  { name: 'a box limit is a string', corrupt: box((r) => ({ ...r, limits: { maxFiles: '3' } })), fails: REFS_CMD, says: /maxFiles/ },
  { name: 'a box limit is negative', corrupt: box((r) => ({ ...r, limits: { maxFiles: -3 } })), fails: REFS_CMD, says: /maxFiles/ },
  { name: 'box limits are an array', corrupt: box((r) => ({ ...r, limits: [1] })), fails: REFS_CMD, says: /limit/ },
  { name: 'a box name is a path', corrupt: refs((d) => ({ ...d, boxes: { '../b1': d.boxes.b1 } })), fails: REFS_CMD, says: /box name/ },
  { name: 'refs.json is a directory', corrupt: replaceWith((p) => mkdirSync(p), (s) => [refsPath(s)]), fails: REFS_CMD, says: /not a regular file/ },
  { name: 'refs.json is a FIFO', corrupt: replaceWith(mkfifo, (s) => [refsPath(s)]), fails: REFS_CMD, says: /not a regular file/ },
  { name: 'the store marker is null', corrupt: (s) => writeFileSync(join(s, 'layerbox-store.json'), 'null'), fails: REFS_CMD, says: /not a layerbox store/ },
  { name: 'the store marker is a FIFO', corrupt: replaceWith(mkfifo, (s) => [join(s, 'layerbox-store.json')]), fails: REFS_CMD, says: /not a regular file/ },
  { name: 'every pack is truncated', corrupt: (s) => packsOf(s).forEach((p) => truncateSync(p, Math.floor(readFileSync(p).length / 2))), fails: BLOB_CMD, says: /missing|damaged/ },
  { name: 'every pack is empty', corrupt: (s) => packsOf(s).forEach((p) => truncateSync(p, 0)), fails: BLOB_CMD, says: /missing|damaged/ },
  { name: 'a directory is named like a pack', corrupt: replaceWith((p) => mkdirSync(p), packsOf), fails: BLOB_CMD, says: /missing|damaged/ },
  { name: 'a FIFO is named like a pack', corrupt: replaceWith(mkfifo, packsOf), fails: BLOB_CMD, says: /missing|damaged/ },
  { name: 'packs is a file', corrupt: replaceWith((p) => writeFileSync(p, 'x'), (s) => [join(s, 'packs')]), fails: BLOB_CMD, says: /packs is not a directory/ },
  { name: 'the lock is a FIFO', corrupt: (s) => mkfifo(join(s, 'lock')), fails: ['box', 'create', 'b2', '--image', 't:1'], says: /lock/ },
  { name: 'a box lease is a FIFO', corrupt: (s) => { mkdirSync(join(s, 'leases'), { recursive: true }); mkfifo(join(s, 'leases', 'b1')); }, fails: ['box', 'reset', 'b1'], says: /lease/ },
];

/** Every command a user might try on the damaged store: none may crash or hang. */
const SWEEP: string[][] = [
  ['image', 'ls'], ['box', 'ls'], ['ls', '-l', 'b1:/'], ['cat', 'b1:/etc/config.txt'], ['diff', 'b1'],
  ['fsck'], ['gc'], ['box', 'create', 'b3', '--image', 't:1'], ['commit', 'b1', '--tag', 't:2'], ['box', 'fork', 'b1', 'b4'],
];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lb-malformed-'));
  pristine = join(tmp, 'pristine');
  await makeTree(join(tmp, 'tree'));
  writeFileSync(join(tmp, 'new.txt'), 'new\n');
  for (const argv of [['image', 'import', join(tmp, 'tree'), '--tag', 't:1'], ['box', 'create', 'b1', '--image', 't:1', '--max-files', '100'], ['cp', join(tmp, 'new.txt'), 'b1:/new.txt']]) {
    const r = await cli(pristine, ...argv);
    expect(r.code, r.stderr).toBe(0);
  }
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a damaged store', () => {
  it('the undamaged store passes every command of the sweep (the control)', async () => {
    const s = join(tmp, `case-${n++}`);
    cpSync(pristine, s, { recursive: true });
    for (const argv of SWEEP) {
      const r = await cli(s, ...argv);
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });

  it.each(cases)('$name: one clear line, exit 1, and no command crashes or hangs', async (c) => {
    const s = join(tmp, `case-${n++}`);
    cpSync(pristine, s, { recursive: true });
    c.corrupt(s);
    expectOneLine(await cli(s, ...c.fails), `${c.name}: ${c.fails.join(' ')}`, c.says);
    const runs = await Promise.all(SWEEP.map((argv) => cli(s, ...argv)));
    runs.forEach((r, i) => {
      const what = `${c.name}: ${SWEEP[i]!.join(' ')}`;
      expectNoCrash(r, what);
      expect(r.stderr.split('\n').filter((l) => l !== '').length, `${what}: stderr ${r.stderr}`).toBeLessThanOrEqual(1);
    });
  });
});

describe('listing', () => {
  it('ls -l of an empty directory prints nothing and succeeds', async () => {
    const s = join(tmp, `case-${n++}`);
    cpSync(pristine, s, { recursive: true });
    mkdirSync(join(tmp, 'empty'));
    expect((await cli(s, 'cp', join(tmp, 'empty'), 'b1:/empty')).code).toBe(0);
    const r = await cli(s, 'ls', '-l', 'b1:/empty');
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const all = await cli(s, 'ls', '-l', 'b1:/');
    expect(all.stdout).toMatch(/^d\S+\s+\d+\s+\d+\s+\S+ \S+\s+empty$/m);
  });
});

describe('the top-level handler', () => {
  // A bug stood in for by a test double: the host's readdir throws a TypeError when the store lists its packs.
  const bug = `data:text/javascript,${encodeURIComponent(`import fs from 'node:fs'; import { syncBuiltinESMExports } from 'node:module';
const readdir = fs.readdirSync;
fs.readdirSync = (p, ...rest) => { if (String(p).endsWith('packs')) throw new TypeError('a bug stood in for'); return readdir(p, ...rest); };
syncBuiltinESMExports();`)}`;

  it('an unexpected error is one line "internal error: <message>", exit 70, without a stack', async () => {
    const r = await cliWith({ nodeArgs: ['--import', bug] }, pristine, 'image', 'ls');
    expect(r.killed).toBe(false);
    expect(r.code).toBe(70);
    expect(r.stderr).toBe('layerbox: internal error: a bug stood in for\n');
  });

  it('LAYERBOX_DEBUG=1 adds the stack', async () => {
    const r = await cliWith({ nodeArgs: ['--import', bug], env: { LAYERBOX_DEBUG: '1' } }, pristine, 'image', 'ls');
    expect(r.code).toBe(70);
    expect(r.stderr.split('\n')[0]).toBe('layerbox: internal error: a bug stood in for');
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});
