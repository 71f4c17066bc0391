// The package as a user gets it: the built dist/ reached through package.json "exports".
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = resolve('.');
let tmp: string;

/**
 * Runs an ES module snippet with plain Node from the package root, so
 * `import('layerbox')` is the package's self-reference, resolved by Node
 * through "exports" (not by the test runner). The snippet prints JSON.
 */
async function nodeEval(code: string): Promise<any> {
  const r = await exec(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT });
  return JSON.parse(r.stdout);
}

/** Every module specifier a bundle imports or requires. */
function specifiers(js: string): string[] {
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)(["'])([^"'\n]+)\1/g;
  return [...js.matchAll(re)].map((m) => m[2]!);
}
const isNodeBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(s) || builtinModules.includes(s.split('/')[0]!);

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/node.js')) || !existsSync(join(ROOT, 'dist/core.js')) || !existsSync(join(ROOT, 'dist/browser.js')) || !existsSync(join(ROOT, 'dist/browser-worker.js'))) {
    await exec(process.execPath, ['esbuild.config.mjs'], { cwd: ROOT });
  }
  if (!existsSync(join(ROOT, 'dist/types/src/index.d.ts'))) {
    await exec(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT });
  }
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-pkg-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('the built package', () => {
  it("import('layerbox') under Node gives dist/node.js with the documented API", async () => {
    const r = await nodeEval(`
      const m = await import('layerbox');
      const kinds = Object.fromEntries(['openStore', 'memoryStore', 'Store', 'Box', 'FsError', 'LayerboxError'].map((k) => [k, typeof m[k]]));
      const store = await m.openStore('memory:');
      const digest = await store.importLayer(async (b) => { await b.addFile('/etc/greeting', new TextEncoder().encode('hi\\n')); }, { tag: 'pkg' });
      const box = await store.createBox('b', { image: 'pkg' });
      let err = null;
      try { box.fs.stat('/nope'); } catch (e) { err = { isFsError: e instanceof m.FsError, code: e.code }; }
      console.log(JSON.stringify({
        url: import.meta.resolve('layerbox'),
        kinds,
        isStore: store instanceof m.Store,
        isBox: box instanceof m.Box,
        digest,
        greeting: new TextDecoder().decode(box.fs.readFile('/etc/greeting')),
        err,
      }));
    `);
    expect(r.url).toBe(new URL('dist/node.js', `file://${ROOT}/`).href);
    expect(r.kinds).toEqual({ openStore: 'function', memoryStore: 'function', Store: 'function', Box: 'function', FsError: 'function', LayerboxError: 'function' });
    expect(r.isStore).toBe(true);
    expect(r.isBox).toBe(true);
    expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.greeting).toBe('hi\n');
    expect(r.err).toEqual({ isFsError: true, code: 'ENOENT' });
  });

  it("import('layerbox/core') gives the host-neutral core, which works on its own", async () => {
    const r = await nodeEval(`
      const m = await import('layerbox/core');
      const store = m.memoryStore();
      await store.importLayer(async (b) => { b.addDir('/d'); await b.addFile('/d/f', new Uint8Array(70000).fill(7)); }, { tag: 'core' });
      const box = await store.createBox('b', { image: 'core' });
      box.fs.writeFile('/d/g', 'new');
      console.log(JSON.stringify({
        url: import.meta.resolve('layerbox/core'),
        kinds: Object.fromEntries(['memoryStore', 'Store', 'Box', 'FsError', 'LayerboxError', 'openStore'].map((k) => [k, typeof m[k]])),
        size: box.fs.stat('/d/f').size,
        diff: box.diff(),
      }));
    `);
    expect(r.url).toBe(new URL('dist/core.js', `file://${ROOT}/`).href);
    // openStore (directory stores) is the Node entry's; the core has none
    expect(r.kinds).toEqual({ memoryStore: 'function', Store: 'function', Box: 'function', FsError: 'function', LayerboxError: 'function', openStore: 'undefined' });
    expect(r.size).toBe(70000);
    expect(r.diff).toEqual([{ kind: 'C', path: '/d' }, { kind: 'A', path: '/d/g' }]);
  });

  for (const file of ['dist/core.js', 'dist/browser.js', 'dist/browser-worker.js']) {
    it(`${file} imports and requires no Node built-ins`, async () => {
      const js = await readFile(join(ROOT, file), 'utf8');
      const specs = specifiers(js);
      expect(specs.filter(isNodeBuiltin)).toEqual([]);
      expect(js).not.toMatch(/\brequire\s*\(\s*["'](node:|(?:fs|path|os|crypto|zlib|url|util|module|events|stream|child_process|worker_threads)\b)/);
      expect(js).not.toMatch(/createRequire/);
    });
  }

  it('the Node bundle does import Node built-ins (so the check above can see them)', async () => {
    const specs = specifiers(await readFile(join(ROOT, 'dist/node.js'), 'utf8'));
    expect(specs.some((s) => s.startsWith('node:'))).toBe(true);
  });

  it('ships the type declarations "exports" points at', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.exports['.'].types).toBe('./dist/types/runtime/node/index.d.ts');
    expect(pkg.exports['./core'].types).toBe('./dist/types/src/index.d.ts');
    for (const f of ['dist/types/runtime/node/index.d.ts', 'dist/types/src/index.d.ts']) {
      expect(existsSync(join(ROOT, f)), f).toBe(true);
    }
    const node = await readFile(join(ROOT, 'dist/types/runtime/node/index.d.ts'), 'utf8');
    expect(node).toMatch(/openStore/);
    const core = await readFile(join(ROOT, 'dist/types/src/index.d.ts'), 'utf8');
    expect(core).toMatch(/memoryStore/);
  });

  it('examples/node-quickstart.mjs runs and prints its diff', async () => {
    const storeDir = join(tmp, 'quickstart-store');
    const r = await exec(process.execPath, ['examples/node-quickstart.mjs', storeDir], { cwd: ROOT });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toContain('  C /etc/app.conf');
    expect(lines).toContain('  A /var/log.txt');
    expect(lines).toContain('  D /README.md');
    expect(lines.at(-1)).toBe(`store: ${storeDir}`);
    expect(r.stderr).toBe('');
    expect(existsSync(storeDir)).toBe(true);
  });
});
