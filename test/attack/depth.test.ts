/**
 * Depth and name-length attacks: hostile tars nested thousands of levels deep
 * or carrying megabyte names and lying size fields, and a guest that nests a
 * chain of directories by renames deeper than any one path can say. Every
 * import ends in one clear line or works, with memory bounded; every CLI
 * command works on the guest's box. Node runs with its default stack.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerboxError, openStore, readTar } from '../../runtime/node/index.js';
import { CLI, lb } from '../fixtures.js';

const exec = promisify(execFile);
const GUEST = resolve('test/attack/guests/build/depth_chain.wasm');
let tmp: string;

beforeAll(async () => {
  if (!existsSync(CLI)) await exec('node', ['esbuild.config.mjs']);
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-depth-'));
  // Runs the CLI and reports its peak RSS (VmHWM: unlike getrusage's maxrss,
  // not inherited from the forking test process) on stderr's last line.
  await writeFile(
    join(tmp, 'rss.mjs'),
    `import { readFileSync } from 'node:fs';\nprocess.on('exit', () => process.stderr.write('\\nmaxrss ' + /VmHWM:\\s*(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1] + '\\n'));\nawait import(${JSON.stringify(new URL(`file://${CLI}`).href)});\n`,
  );
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** The CLI as a user runs it (default stack), with its peak RSS in MiB. */
async function lbRss(store: string, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string; rssMiB: number }> {
  let r: { code: number; stdout: string; stderr: string };
  try {
    const o = await exec(process.execPath, [join(tmp, 'rss.mjs'), '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '' }, maxBuffer: 64 << 20 });
    r = { code: 0, stdout: o.stdout, stderr: o.stderr };
  } catch (e: any) {
    r = { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
  const m = /\nmaxrss (\d+)\n$/.exec(r.stderr);
  return { ...r, stderr: m ? r.stderr.slice(0, m.index) : r.stderr, rssMiB: m ? Number(m[1]) / 1024 : NaN };
}

/** A stderr that is one clear line: no stack trace, no megabyte of name. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]!.length).toBeLessThan(400);
  expect(lines[0]).not.toMatch(/call stack|RangeError|at .*\.js:\d+/);
  return lines[0]!;
}

// ---- hostile tars, written byte by byte (no writer of ours would make them) ----

const enc = new TextEncoder();

/** A ustar header block; `size` may be a raw field (a lie). */
function header(name: string, type: string, size: number | string): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string, off: number) => h.set(enc.encode(s), off);
  put(name.slice(0, 99), 0);
  put('0000644\0', 100);
  put('0000000\0', 108);
  put('0000000\0', 116);
  put(typeof size === 'string' ? size : size.toString(8).padStart(11, '0') + '\0', 124);
  put('14000000000\0', 136);
  h.fill(32, 148, 156);
  put(type, 156);
  put('ustar\u000000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

const pad = (n: number) => new Uint8Array((512 - (n % 512)) % 512);

function paxRecord(key: string, value: string): Uint8Array {
  const body = ` ${key}=${value}\n`;
  const bodyLen = enc.encode(body).length;
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len++;
  return enc.encode(`${len}${body}`);
}

/** One member whose path goes in a pax record. */
function paxMember(path: string, type: '0' | '5', data = new Uint8Array()): Uint8Array[] {
  const rec = paxRecord('path', path);
  return [header('PaxHeader', 'x', rec.length), rec, pad(rec.length), header('x', type, data.length), data, pad(data.length)];
}

async function tarFile(name: string, parts: Uint8Array[]): Promise<string> {
  const f = join(tmp, name);
  await writeFile(f, Buffer.concat([...parts, new Uint8Array(1024)]));
  return f;
}

/**
 * A tar of a chain `levels` directories deep (single-letter names), a file at
 * the bottom; with `every`, an entry for each directory (the tar then grows
 * as levels squared), else the directories are implied by the file's path.
 */
function chainTar(levels: number, every: boolean): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let p = 'd';
  for (let i = 0; i < levels; i++, p += '/d') if (every) parts.push(...paxMember(p, '5'));
  parts.push(...paxMember(`${p}/bottom.txt`, '0', enc.encode('deep\n')));
  return parts;
}

describe('hostile tars', () => {
  it('a 5,000-level tar imports and its image works in every command; a 20,000-level one is one clear line', async () => {
    const store = join(tmp, 'deep-tars');
    const f5 = await tarFile('deep5000.tar', chainTar(5000, true));
    const imp = await lbRss(store, 'image', 'import', f5, '--tag', 'deep:5000');
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    console.log(`5,000-level tar (${(await readFile(f5)).length >> 20} MiB): import peak RSS ${imp.rssMiB.toFixed(0)} MiB`);
    expect(imp.rssMiB).toBeLessThan(512);
    expect((await lb(store, 'box', 'create', 'd5', '--image', 'deep:5000')).code).toBe(0);
    // The deepest path a user can type (under PATH_MAX) lists.
    const reachable = Array(2000).fill('d').join('/');
    const ls = await lb(store, 'ls', `d5:/${reachable}`);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toBe('d/\n');
    expect((await lb(store, 'diff', 'd5')).stdout).toBe('');
    const oci = join(tmp, 'deep5000-oci.tar');
    const exp = await lb(store, 'export', 'deep:5000', '-o', oci, '--format', 'oci');
    expect(exp.stderr).toBe('');
    const again = await lb(join(tmp, 'deep-tars-2'), 'import', oci);
    expect(again.stderr).toBe('');
    expect(again.stdout).toContain('deep:5000');
    expect((await lb(join(tmp, 'deep-tars-2'), 'fsck')).code).toBe(0);

    const f20 = await tarFile('deep20000.tar', chainTar(20000, false));
    const bad = await lbRss(store, 'image', 'import', f20, '--tag', 'deep:20000');
    expect(bad.code).toBe(1);
    expect(oneLine(bad.stderr)).toMatch(/longer than 16384 bytes/);
    console.log(`20,000-level tar: refused, peak RSS ${bad.rssMiB.toFixed(0)} MiB`);
    expect((await lb(store, 'image', 'ls')).stdout).not.toContain('20000');
    // The same archive through the host-neutral reader (OCI layers, browsers): refused by its size field.
    expect(() => readTar(new Uint8Array(Buffer.concat([...chainTar(20000, false), new Uint8Array(1024)])))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED', message: expect.stringMatching(/at most 16384/) }));
  }, 600_000);

  const hostile: Array<[string, () => Uint8Array[], RegExp]> = [
    ['a 1 MB pax path', () => paxMember('a/'.repeat(500_000) + 'x', '0'), /pax path .*1000001 bytes|longer than 16384/],
    [
      'a 1 MB GNU long name',
      () => {
        const name = enc.encode('b/'.repeat(500_000) + 'y\0');
        return [header('././@LongLink', 'L', name.length), name, pad(name.length), header('y', '0', 0)];
      },
      /long name .*1000002 bytes|longer than 16384/,
    ],
    ['a pax header claiming 8 GiB', () => [header('PaxHeader', 'x', '77777777777\0'), paxRecord('path', 'x'), pad(8), header('x', '0', 0)], /pax header .*8589934591 bytes|exceeds max size/i],
    ['a GNU long name claiming 8 GiB', () => [header('././@LongLink', 'L', '77777777777\0'), enc.encode('z\0'), pad(2), header('z', '0', 0)], /long name .*8589934591 bytes|exceeds max size/i],
    [
      'pax headers adding up past their bound',
      () => Array.from({ length: 8 }, () => {
        const rec = paxRecord('comment', 'c'.repeat(200_000));
        return [header('PaxHeader', 'x', rec.length), rec, pad(rec.length)];
      }).flat().concat([header('c', '0', 0)]),
      /add up to more than 1048576 bytes/,
    ],
  ];

  for (const [what, make, why] of hostile) {
    it(`${what}: one clear line from the CLI and from the reader, memory bounded`, async () => {
      const parts = make();
      const f = await tarFile(`${what.replace(/\W+/g, '-')}.tar`, parts);
      const store = join(tmp, 'hostile');
      const r = await lbRss(store, 'image', 'import', f, '--tag', 'evil');
      // Pax headers of 1.6 MB in all are within what tar-stream reads (4 MiB each): that one may import.
      if (!what.startsWith('pax headers')) {
        expect(r.code).toBe(1);
        expect(oneLine(r.stderr)).toMatch(why);
      } else if (r.code !== 0) oneLine(r.stderr);
      console.log(`${what}: CLI ${r.code ? 'refused' : 'imported'}, peak RSS ${r.rssMiB.toFixed(0)} MiB`);
      expect(r.rssMiB).toBeLessThan(256);

      const bytes = new Uint8Array(Buffer.concat([...parts, new Uint8Array(1024)]));
      let err: unknown;
      try {
        readTar(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LayerboxError);
      const msg = (err as Error).message;
      expect(msg).toMatch(why);
      expect(msg.split('\n')).toHaveLength(1);
      expect(msg.length).toBeLessThan(300);
      // And through the store (as an OCI layer would go): nothing tagged.
      const s = await openStore('memory:');
      await expect(s.importTarBytes(bytes)).rejects.toThrow(LayerboxError);
      expect(await s.listImages()).toEqual([]);
    }, 120_000);
  }
});

// ---- a guest that nests directories by renames ---------------------------

describe('a box a guest nested 2,505 levels deep by renames', () => {
  const LEVELS = 500, CHAINS = 5;
  const store = () => join(tmp, 'guest-store');
  /** The path of the dir LEVELS levels down the chain (under PATH_MAX), as the CLI takes it. */
  const mid = () => 'g' + '/a'.repeat(LEVELS);

  beforeAll(async () => {
    const empty = join(tmp, 'empty');
    await mkdir(empty, { recursive: true });
    expect((await lb(store(), 'image', 'import', empty, '--tag', 'base')).code).toBe(0);
    expect((await lb(store(), 'box', 'create', 'deep', '--image', 'base')).code).toBe(0);
    const run = await lb(store(), 'run', '--box', 'deep', GUEST, '--', String(LEVELS), String(CHAINS));
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe(`depth ${(LEVELS + 1) * CHAINS}`);
  }, 120_000);

  it('ls -l, cat and diff', async () => {
    const ls = await lb(store(), 'ls', '-l', `deep:/${mid()}`);
    expect(ls.stderr).toBe('');
    expect(ls.stdout).toMatch(/^d.* g\n-.* mid\.txt\n$/);
    expect((await lb(store(), 'cat', `deep:/${mid()}/mid.txt`)).stdout).toBe('the middle\n');
    const diff = await lbRss(store(), 'diff', 'deep');
    expect(diff.stderr).toBe('');
    const lines = diff.stdout.trim().split('\n');
    // Every directory of the chain, the two files and nothing else; the deepest path is far past PATH_MAX.
    expect(lines).toHaveLength((LEVELS + 1) * CHAINS + 2);
    expect(lines.every((l) => l.startsWith('A /g'))).toBe(true);
    const longest = Math.max(...lines.map((l) => l.length - 2));
    expect(longest).toBeGreaterThan(4096);
    expect(lines.some((l) => l.endsWith('/bottom.txt') && l.length - 2 === longest)).toBe(true);
    console.log(`guest box: ${lines.length} changes, deepest path ${longest} bytes, diff peak RSS ${diff.rssMiB.toFixed(0)} MiB`);
  }, 120_000);

  it('box fork, commit, export as a bundle and as OCI, and import again with the same tree', async () => {
    expect((await lb(store(), 'box', 'fork', 'deep', 'deep2')).code).toBe(0);
    const diffBefore = (await lb(store(), 'diff', 'deep2')).stdout;
    const commit = await lb(store(), 'commit', 'deep2', '--tag', 'deep:v1');
    expect(commit.stderr).toBe('');
    expect(commit.code).toBe(0);
    expect((await lb(store(), 'diff', 'deep2')).stdout).toBe('');

    const bundle = join(tmp, 'deep.lbx');
    expect((await lb(store(), 'export', 'deep:v1', '--box', 'deep', '-o', bundle)).stderr).toBe('');
    const oci = join(tmp, 'deep-oci.tar');
    expect((await lb(store(), 'export', 'deep:v1', '-o', oci, '--format', 'oci')).stderr).toBe('');

    const s2 = join(tmp, 'guest-store-bundle');
    const ib = await lb(s2, 'import', bundle);
    expect(ib.stderr).toBe('');
    expect(ib.stdout).toContain('box deep');
    // The box came back with its upper: the same changes.
    expect((await lb(s2, 'diff', 'deep')).stdout).toBe(diffBefore);

    const s3 = join(tmp, 'guest-store-oci');
    const io = await lb(s3, 'import', oci);
    expect(io.stderr).toBe('');
    expect((await lb(s3, 'box', 'create', 'back', '--image', 'deep:v1')).code).toBe(0);
    expect((await lb(s3, 'cat', `back:/${mid()}/mid.txt`)).stdout).toBe('the middle\n');
    // Its whole tree equals the committed one: the same layer export, byte for byte.
    const oci2 = join(tmp, 'deep-oci-2.tar');
    expect((await lb(s3, 'export', 'deep:v1', '-o', oci2, '--format', 'oci')).stderr).toBe('');
    expect(Buffer.compare(await readFile(oci), await readFile(oci2))).toBe(0);
  }, 300_000);

  it('cp: a subtree whose host paths fit copies out; one past PATH_MAX on the host is refused in one line, writing nothing', async () => {
    const out = join(tmp, 'cp-out');
    await mkdir(out);
    const r = await lb(store(), 'cp', 'deep:/g', out);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/longer than PATH_MAX \(4096\); nothing was copied/);
    expect(await readdir(out)).toEqual([]);
    const f = await lb(store(), 'cp', `deep:/${mid()}/mid.txt`, out);
    expect(f.stderr).toBe('');
    expect(await readFile(join(out, 'mid.txt'), 'utf8')).toBe('the middle\n');
    // A host tree 1,500 levels deep goes in, into the deep box too.
    const host = join(tmp, 'cp-in');
    const rel = Array(1500).fill('h').join('/');
    await mkdir(join(host, rel), { recursive: true });
    await writeFile(join(host, rel, 'in.txt'), 'in\n');
    const i = await lb(store(), 'cp', host, 'deep:/');
    expect(i.stderr).toBe('');
    expect((await lb(store(), 'cat', `deep:/cp-in/${rel}/in.txt`)).stdout).toBe('in\n');
    // And the same host tree imports as an image.
    expect((await lb(store(), 'image', 'import', host, '--tag', 'hosttree')).stderr).toBe('');
    expect((await lb(store(), 'box', 'create', 'ht', '--image', 'hosttree')).code).toBe(0);
    expect((await lb(store(), 'cat', `ht:/${rel}/in.txt`)).stdout).toBe('in\n');
  }, 120_000);

  it('fsck, gc, box reset and box rm', async () => {
    expect((await lb(store(), 'fsck')).code).toBe(0);
    expect((await lb(store(), 'gc')).code).toBe(0);
    expect((await lb(store(), 'fsck')).code).toBe(0);
    expect((await lb(store(), 'box', 'reset', 'deep')).code).toBe(0);
    expect((await lb(store(), 'diff', 'deep')).stdout).toBe('');
    expect((await lb(store(), 'box', 'rm', 'deep')).code).toBe(0);
    expect((await lb(store(), 'box', 'rm', 'deep2')).code).toBe(0);
    expect((await lb(store(), 'box', 'rm', 'ht')).code).toBe(0);
    const gc = await lb(store(), 'gc');
    expect(gc.stdout).toMatch(/^removed [1-9]\d* blobs/);
    expect((await lb(store(), 'fsck')).code).toBe(0);
  }, 120_000);
});
