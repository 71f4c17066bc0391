// Errors inside a guest's call are errnos (a host exception is EIO, its cause
// told to the host); errors outside carry a code callers can test.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Errno, type GuestFs, LayerboxError, exportBundle, hostFailure, importBundle, isCode, memoryStore, pullFromRegistry, readTar, runModule, stderrHostErrors, writeTar } from '../runtime/node/index.js';
import { CLI } from './fixtures.js';
import { storeWithImage, text } from './helpers.js';

const GUEST = readFileSync('test/wasi/build/guest.wasm');

/** What a promise rejects with (the test fails if it resolves). */
async function rejection(p: Promise<unknown>): Promise<LayerboxError> {
  const r = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(r).toBeInstanceOf(LayerboxError);
  return r as LayerboxError;
}
function thrown(f: () => unknown): LayerboxError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LayerboxError);
    return e as LayerboxError;
  }
  throw new Error('did not throw');
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-errors-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('a host exception inside a guest call', () => {
  /** The box's filesystem, except that looking up a path with "boom" in it throws what a host bug would. */
  async function buggyFs(): Promise<GuestFs> {
    const store = await storeWithImage({ 'ok.txt': 'fine' });
    const fs = (await store.createBox('b', { image: 'base' })).fs;
    const bug = (path: string) => {
      if (path.includes('boom')) throw new TypeError(`stand-in bug looking up ${path}`);
    };
    return new Proxy(fs, {
      get(target, key) {
        const v = Reflect.get(target, key, target);
        if (key === 'stat' || key === 'tryStat' || key === 'open')
          return (path: string, ...rest: unknown[]) => {
            bug(path);
            return (v as (...a: unknown[]) => unknown).call(target, path, ...rest);
          };
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  it('is EIO for the guest, which keeps running, and onHostError sees the cause', async () => {
    const fs = await buggyFs();
    const seen: Array<{ call: string; error: unknown }> = [];
    const module = await WebAssembly.compile(GUEST);
    const r = runModule(module, [{ guest: '/', fs }], { args: ['guest', 'cat', '/boom.txt'], onHostError: (call, error) => seen.push({ call, error }) });
    // The guest got errno 29 (EIO) from fopen, printed it and returned: no trap.
    expect(r.trap).toBeUndefined();
    expect(r.exitCode).toBe(1);
    expect(text(r.stdout)).toBe(`cat /boom.txt: errno ${Errno.IO}\n`);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]!.call).toBe('path_open');
    expect(seen[0]!.error).toBeInstanceOf(TypeError);
    expect((seen[0]!.error as Error).message).toBe('stand-in bug looking up /boom.txt');
    // The same filesystem serves other paths as before.
    const ok = runModule(module, [{ guest: '/', fs }], { args: ['guest', 'cat', '/ok.txt'], onHostError: (call, error) => seen.push({ call, error }) });
    expect([ok.exitCode, text(ok.stdout)]).toEqual([0, 'fine']);
  });

  it('a missing file is an errno, not a host error: onHostError is not called', async () => {
    const fs = await buggyFs();
    const seen: string[] = [];
    const r = runModule(await WebAssembly.compile(GUEST), [{ guest: '/', fs }], { args: ['guest', 'cat', '/nothere'], onHostError: (call) => seen.push(call) });
    expect(text(r.stdout)).toBe(`cat /nothere: errno ${Errno.NOENT}\n`);
    expect(seen).toEqual([]);
  });

  it('a throwing onHostError does not reach the guest', async () => {
    const fs = await buggyFs();
    const r = runModule(await WebAssembly.compile(GUEST), [{ guest: '/', fs }], {
      args: ['guest', 'cat', '/boom'],
      onHostError: () => {
        throw new Error('the reporter failed too');
      },
    });
    expect([r.trap, r.exitCode, text(r.stdout)]).toEqual([undefined, 1, `cat /boom: errno ${Errno.IO}\n`]);
  });

  it("the command line's reporter prints one line per distinct cause, escaped, and stops after 16", () => {
    const lines: string[] = [];
    const report = stderrHostErrors((l) => lines.push(l));
    report('path_open', new TypeError('bad thing'));
    report('fd_read', new TypeError('bad thing'));
    report('fd_write', new Error('other\nthing \x1b[31m'));
    expect(lines).toEqual(['layerbox: host error in path_open: bad thing\n', 'layerbox: host error in fd_write: other\\x0athing \\x1b[31m\n']);
    for (let i = 0; i < 40; i++) report('path_open', new Error(`path ${i}`));
    expect(lines.length).toBe(17);
    expect(lines[16]).toBe('layerbox: host error in path_open: further host errors not shown\n');
  });
});

describe('LayerboxError codes from real failures', () => {
  it('a missing image in a registry is NOT_FOUND', async () => {
    const server: Server = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    try {
      const port = (server.address() as { port: number }).port;
      const e = await rejection(pullFromRegistry(memoryStore(), `127.0.0.1:${port}/demo:nope`));
      expect(e.code).toBe('NOT_FOUND');
      expect(isCode(e, 'NOT_FOUND')).toBe(true);
      expect(isCode(e, 'CORRUPT')).toBe(false);
    } finally {
      server.close();
    }
  });

  it('a corrupt blob in a bundle is CORRUPT, a missing one too; a name taken is ALREADY_EXISTS', async () => {
    const a = await storeWithImage({ f: 'content' });
    const bytes = await exportBundle(a, { images: ['base'] });
    const entries = readTar(bytes);
    const blob = entries.find((e) => e.path.startsWith('blobs/') && e.data && text(e.data) === 'content')!;
    const tampered = writeTar(entries.map((e) => (e === blob ? { ...e, data: new TextEncoder().encode('CONTENT') } : e)));
    expect((await rejection(importBundle(memoryStore({ chunkSize: 8 }), tampered))).code).toBe('CORRUPT');
    expect((await rejection(importBundle(memoryStore({ chunkSize: 8 }), writeTar(entries.filter((e) => e !== blob))))).code).toBe('CORRUPT');
    const box = await a.createBox('work', { image: 'base' });
    await box.flush();
    const withBox = await exportBundle(a, { boxes: ['work'] });
    const b = memoryStore({ chunkSize: 8 });
    await importBundle(b, withBox);
    expect((await rejection(importBundle(b, withBox))).code).toBe('ALREADY_EXISTS');
  });

  it('a tar with a bad header checksum is CORRUPT', () => {
    const t = writeTar([{ path: 'a.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new TextEncoder().encode('a') }]);
    t[0] ^= 1;
    const e = thrown(() => readTar(t));
    expect(e.code).toBe('CORRUPT');
    expect(e.message).toMatch(/bad tar header checksum/);
  });

  it('a store write that meets a full disk is QUOTA, keeping the errno and the host error', () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
    const e = hostFailure(enospc, 'writing a pack to the store s') as LayerboxError;
    expect(e).toBeInstanceOf(LayerboxError);
    expect([e.code, e.errno, e.cause, e.message]).toEqual(['QUOTA', Errno.NOSPC, enospc, 'no space left on device writing a pack to the store s']);
    const edquot = hostFailure(Object.assign(new Error('quota'), { code: 'EDQUOT' }), 'x') as LayerboxError;
    expect(edquot.code).toBe('QUOTA');
    const eio = hostFailure(Object.assign(new Error('io'), { code: 'EIO' }), 'x') as LayerboxError;
    expect([eio.code, eio.errno]).toEqual(['IO', Errno.IO]);
    // Not a host failure: returned as it is.
    const bug = new TypeError('bug');
    expect(hostFailure(bug, 'x')).toBe(bug);
  });

  it('a code given wins over the errno; without either the code is INVALID', () => {
    expect(new LayerboxError('m', { code: 'CORRUPT', errno: Errno.IO }).code).toBe('CORRUPT');
    expect(new LayerboxError('m', { errno: Errno.TIMEDOUT }).code).toBe('TIMEOUT');
    expect(new LayerboxError('m').code).toBe('INVALID');
  });
});

describe('the command line', () => {
  const run = promisify(execFile);
  async function cli(env: Record<string, string>, ...argv: string[]) {
    if (!existsSync(CLI)) await run(process.execPath, ['esbuild.config.mjs']);
    return run(process.execPath, [CLI, '--store', join(tmp, 'store'), ...argv], { env: { ...process.env, LAYERBOX_STORE: '', LAYERBOX_DEBUG: '', ...env } }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
  }

  it('prints the code with LAYERBOX_DEBUG=1, and only then; the exit status stays 1', async () => {
    const missing = join(tmp, 'no-such.tar');
    const plain = await cli({}, 'image', 'import', missing, '--tag', 'x:1');
    expect(plain).toEqual({ code: 1, stderr: `layerbox: no such file or directory: ${missing}\n` });
    const debug = await cli({ LAYERBOX_DEBUG: '1' }, 'image', 'import', missing, '--tag', 'x:1');
    expect(debug.code).toBe(1);
    expect(debug.stderr.split('\n').slice(0, 2)).toEqual([`layerbox: no such file or directory: ${missing}`, 'code: NOT_FOUND']);
  });
});
