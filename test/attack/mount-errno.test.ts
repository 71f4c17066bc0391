/**
 * Host errors inside a mount reach the guest as the WASI errno of the same
 * name (anything WASI lacks as EIO): never a hang on a FIFO, never a host
 * message or path, never a dead worker; and a mount leaks no descriptor over
 * thousands of calls.
 */
import { constants as osConstants } from 'node:os';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Errno, FsError, HostFs, openStore, runInWorker } from '../../runtime/node/index.js';
import { hostErrno } from '../../runtime/node/host-fs.js';

const SPECIAL = resolve('test/attack/guests/build/mount_special.wasm');
const HOLD = resolve('test/attack/guests/build/mount_hold.wasm');
const SECRET = 'canary-secret-5b21\n';

let tmp: string;
let mount: string;
let server: Server;

const fdCount = () => readdirSync('/proc/self/fd').length;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'layerbox-mount-errno-'));
  mount = join(tmp, 'mount');
  await mkdir(join(mount, 'd'), { recursive: true });
  await mkdir(join(tmp, 'outside'));
  await writeFile(join(tmp, 'outside/secret'), SECRET);
  execFileSync('mkfifo', [join(mount, 'fifo')]);
  server = createServer();
  await new Promise<void>((res) => server.listen(join(mount, 'sock'), res));
});
afterAll(async () => {
  await new Promise((res) => server.close(res));
  await rm(tmp, { recursive: true, force: true });
});

describe('the host errno table', () => {
  it('gives every host errno Node knows the WASI errno of the same name', () => {
    const aliases: Record<string, keyof typeof Errno> = { E2BIG: 'TOOBIG', EOPNOTSUPP: 'NOTSUP', EWOULDBLOCK: 'AGAIN', ETIME: 'TIMEDOUT' };
    let named = 0;
    for (const code of Object.keys(osConstants.errno)) {
      const wasi = aliases[code] ?? code.slice(1);
      const want = wasi in Errno ? Errno[wasi as keyof typeof Errno] : Errno.IO;
      if (want !== Errno.IO) named++;
      expect(hostErrno(Object.assign(new Error('x'), { code })), code).toBe(want);
    }
    // The ones the brief names, explicitly.
    for (const [code, want] of Object.entries({ ESPIPE: Errno.SPIPE, ENXIO: Errno.NXIO, ENODEV: Errno.NODEV, EAGAIN: Errno.AGAIN, EMFILE: Errno.MFILE, ENFILE: Errno.NFILE, EOVERFLOW: Errno.OVERFLOW, ETIMEDOUT: Errno.TIMEDOUT, ENOTCONN: Errno.NOTCONN, ECONNRESET: Errno.CONNRESET }))
      expect(hostErrno({ code }), code).toBe(want);
    expect(named).toBeGreaterThan(70);
  });

  it('turns what it does not know into EIO', () => {
    for (const e of [{ code: 'ENODATA' }, { code: 'EOF' }, { code: 'ERR_INVALID_ARG_TYPE' }, { code: 'toString' }, { code: '__proto__' }, new TypeError('x'), null, undefined, 'text'])
      expect(hostErrno(e), String((e as { code?: string })?.code ?? e)).toBe(Errno.IO);
  });
});

// First: a run in a worker (below) releases the worker's own descriptors only some time after it ends.
describe('descriptors', () => {
  it('a mount closes every descriptor it opens, over thousands of calls that work and that fail', async () => {
    await symlink(join(tmp, 'outside'), join(mount, 'out'));
    await symlink('d', join(mount, 'in'));
    const before = fdCount();
    const fs = new HostFs(mount);
    const errnos = new Set<number>();
    const tryIt = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(FsError);
        errnos.add((e as FsError).errno);
      }
    };
    for (let i = 0; i < 2000; i++) {
      const f = fs.open(`/in/./../d/f${i}`, { create: true });
      f.write(0, new TextEncoder().encode('x'));
      f.close!();
      fs.rename(`/d/f${i}`, `/in/g${i}`);
      fs.link(`/d/g${i}`, `/in/h${i}`, true);
      fs.stat(`/in/h${i}`);
      fs.utimes(`/in/h${i}`, 0n, 0n);
      fs.readdir('/in');
      fs.unlink(`/d/g${i}`);
      fs.unlink(`/in/h${i}`);
      fs.mkdir(`/in/m${i}`);
      fs.rmdir(`/d/m${i}`);
      tryIt(() => fs.open('/out/secret'));
      tryIt(() => fs.open(`/out/new${i}`, { create: true }));
      tryIt(() => fs.mkdir('/in/../out/made'));
      tryIt(() => fs.readdir('/fifo/x'));
      tryIt(() => fs.open('/sock'));
      tryIt(() => fs.open('/fifo').read(0, 1));
      tryIt(() => fs.symlink('/etc', '/in/abs'));
    }
    // The FIFO opens left open above are closed with the mount.
    fs.close();
    expect(fdCount()).toBe(before);
    expect([...errnos].sort((a, b) => a - b)).toEqual([Errno.NOENT, Errno.NOTDIR, Errno.NXIO, Errno.PERM, Errno.SPIPE].sort((a, b) => a - b));
    expect(readdirSync(join(tmp, 'outside'))).toEqual(['secret']);
    expect(() => fs.stat('/')).toThrow(expect.objectContaining({ errno: Errno.BADF }));
  });
});

describe('special files in a mount', () => {
  it('a guest gets errnos at once from a FIFO with no writer and a socket, and cannot lead a symlink out', async () => {
    const s = await openStore(join(tmp, 'store'));
    await mkdir(join(tmp, 'empty'));
    await s.importDirectory(join(tmp, 'empty'), { tag: 'base' });
    await s.backend.close();
    // The timeout only turns a hang into a failure; the run ends on its own.
    const r = await runInWorker({ store: join(tmp, 'store'), image: 'base', program: SPECIAL, args: ['main', '/m'], env: [], dirs: [{ host: mount, guest: '/m' }], stdio: 'pipe' }, { timeoutMs: 120_000 });
    const stdout = new TextDecoder().decode(r.stdout);
    expect(r.timedOut).toBe(false);
    expect(r.trap).toBeUndefined();
    expect(new TextDecoder().decode(r.stderr)).toBe('');
    expect(stdout.trim().split('\n')).toEqual([
      'fifo stat: ok',
      'fifo open for reading: ok',
      'fifo read: ESPIPE',
      'fifo pread: ESPIPE',
      'fifo open for writing: ok',
      'fifo write: ESPIPE',
      'socket open: ENXIO',
      'absolute symlink: EPERM',
      'climbing symlink: ok',
      'read through the climbing symlink: ENOENT',
      'list through the climbing symlink: ENOENT',
      'create through the climbing symlink: ENOENT',
      'mkdir through the climbing symlink: ENOENT',
      'remove the climbing symlink: ok',
    ]);
    expect(stdout).not.toContain(tmp);
    expect(readdirSync(join(tmp, 'outside'))).toEqual(['secret']);
    expect(r.exitCode).toBe(0);
  }, 180_000);
});

describe('a guest stopped in the middle of its calls', () => {
  it('leaves no descriptor open in the host (Node closes what a worker opened when it is terminated)', async () => {
    const s = await openStore(join(tmp, 'store'));
    if (!(await s.backend.readRefs()).tags['hold:latest']) {
      await mkdir(join(tmp, 'empty-hold'));
      await s.importDirectory(join(tmp, 'empty-hold'), { tag: 'hold' });
    }
    await s.backend.close();
    const dir = join(tmp, 'hold');
    await mkdir(join(dir, 'a/b/c'), { recursive: true });
    for (let round = 0; round < 3; round++) {
      const before = fdCount();
      const stop = new AbortController();
      let said = '';
      let holding = 0;
      // Stopped once the guest says it holds its files: it is then walking the mount in a loop.
      const r = await runInWorker(
        { store: join(tmp, 'store'), image: 'hold', program: HOLD, args: ['main', '/m', '2000'], env: [], dirs: [{ host: dir, guest: '/m' }], stdio: 'pipe' },
        { signal: stop.signal, onStdout: (b) => { said += new TextDecoder().decode(b); if (said.includes('\n')) { holding = fdCount(); stop.abort(); } } },
      );
      expect(said).toBe('held 2000\n');
      expect(r.exitCode).toBe(124);
      expect(r.timedOut).toBe(false);
      // The guest's 2,000 files were host descriptors while it ran; none outlives it (others of this process may close meanwhile).
      expect(holding).toBeGreaterThanOrEqual(before + 2000);
      expect(fdCount()).toBeLessThanOrEqual(before);
    }
  }, 180_000);
});
