import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTree } from './fixtures.js';

const exec = promisify(execFile);
const CLI = resolve('dist/cli.js');
let tmp: string;
let store: string;

/** Runs the built CLI as a user would; never throws, returns status and output. */
async function lb(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [CLI, '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e: any) {
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  if (!existsSync(CLI)) await exec('node', ['esbuild.config.mjs']);
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-cli-'));
  store = join(tmp, 'store');
  await makeTree(join(tmp, 'tree'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('the built CLI', () => {
  it('imports, copies in, diffs, commits and shows history', async () => {
    const imp = await lb('image', 'import', join(tmp, 'tree'), '--tag', 'base');
    expect(imp.code).toBe(0);
    expect(imp.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await lb('box', 'create', 'b1', '--image', 'base')).code).toBe(0);

    await writeFile(join(tmp, 'config.txt'), 'mode=fast\n');
    await writeFile(join(tmp, 'notes.md'), '# notes\n');
    expect((await lb('cp', join(tmp, 'config.txt'), 'b1:/etc/config.txt')).code).toBe(0);
    expect((await lb('cp', join(tmp, 'notes.md'), 'b1:/data')).code).toBe(0);
    expect((await lb('cat', 'b1:/etc/config.txt')).stdout).toBe('mode=fast\n');
    expect((await lb('cat', 'b1:/data/notes.md')).stdout).toBe('# notes\n');

    const diff = await lb('diff', 'b1');
    // Overwriting a file changes the file, not its directory (whose entries stay the same).
    expect(diff.stdout.trim().split('\n')).toEqual(['C /data', 'A /data/notes.md', 'C /etc/config.txt']);
    const dj = JSON.parse((await lb('diff', 'b1', '--json')).stdout);
    expect(dj).toContainEqual({ kind: 'A', path: '/data/notes.md' });

    const commit = await lb('commit', 'b1', '--tag', 'base:v2', '-m', 'fast config');
    expect(commit.code).toBe(0);
    const v2 = commit.stdout.trim();
    expect(v2).toMatch(/^sha256:/);
    expect((await lb('diff', 'b1')).stdout).toBe('');

    const hist = await lb('image', 'history', 'base:v2');
    const lines = hist.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^LAYER\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(lines.length).toBe(3);
    expect(lines[1]).toContain('fast config');
    const hj = JSON.parse((await lb('image', 'history', 'base:v2', '--json')).stdout);
    expect(hj.length).toBe(2);

    const ls = JSON.parse((await lb('image', 'ls', '--json')).stdout);
    expect(ls.map((i: any) => i.tags).flat().sort()).toEqual(['base:latest', 'base:v2']);
    expect((await lb('box', 'create', 'b2', '--image', 'base:v2')).code).toBe(0);
    expect((await lb('cat', 'b2:/etc/config.txt')).stdout).toBe('mode=fast\n');
    expect((await lb('box', 'create', 'b3', '--image', 'base')).code).toBe(0);
    expect((await lb('cat', 'b3:/etc/config.txt')).stdout).toBe('mode=slow\n');
    expect((await lb('ls', 'b2:/data')).stdout.trim().split('\n')).toEqual(['a.txt', 'notes.md', 'sub/']);

    // copy out, fork, reset, rm
    expect((await lb('cp', 'b2:/data', join(tmp, 'out'))).code).toBe(0);
    expect(await readFile(join(tmp, 'out/sub/b.txt'), 'utf8')).toBe('beta\n');
    expect((await lb('box', 'fork', 'b2', 'b4')).code).toBe(0);
    const boxes = JSON.parse((await lb('box', 'ls', '--json')).stdout);
    expect(boxes.map((b: any) => b.name)).toEqual(['b1', 'b2', 'b3', 'b4']);
    expect((await lb('fsck')).code).toBe(0);
    expect((await lb('gc')).code).toBe(0);
    expect((await lb('cat', 'b2:/data/notes.md')).stdout).toBe('# notes\n');
  });

  it('fails with one clear line and a non-zero status', async () => {
    const r = await lb('cat', 'nobox:/etc/x');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('layerbox: no such box: nobox\n');
    const r2 = await lb('cat', 'b1:/no/such/file');
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/^layerbox: ENOENT: no such file or directory: \/no\n$/);
    const r3 = await lb('frobnicate');
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/unknown command frobnicate/);
    const r4 = await lb('image', 'inspect', 'nope:1');
    expect(r4.stderr).toBe('layerbox: no such image: nope:1\n');
  });
});
