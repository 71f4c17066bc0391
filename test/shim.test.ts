import { File, OpenFile, PreopenDirectory } from '@bjorn3/browser_wasi_shim';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WasiHost, memoryStore, runModule } from '../src/index.js';

const GUEST = readFileSync('test/wasi/build/guest.wasm');

describe('browser_wasi_shim interop', () => {
  it('attaches shim fds (a PreopenDirectory) next to the box', async () => {
    const store = memoryStore();
    await store.importLayer(async (b) => b.addFile('/etc/motd', new TextEncoder().encode('from the box\n')), { tag: 'x' });
    const box = await store.createBox('b', { image: 'x' });
    const shimDir = new PreopenDirectory('/shim', new Map([['hello.txt', new File(new TextEncoder().encode('from the shim\n'))]]));
    const mod = await WebAssembly.compile(GUEST);
    const run = (args: string[]) => runModule(mod, [{ guest: '/', fs: box.fs }], { args: ['guest', ...args], extraFds: [shimDir as never] });
    expect(new TextDecoder().decode(run(['cat', '/shim/hello.txt']).stdout)).toBe('from the shim\n');
    expect(new TextDecoder().decode(run(['cat', '/etc/motd']).stdout)).toBe('from the box\n');
    expect(run(['write', '/shim/new.txt', 'written through the shim']).exitCode).toBe(0);
    const f = shimDir.dir.contents.get('new.txt') as File;
    expect(new TextDecoder().decode(f.data)).toBe('written through the shim');
  });

  it('takes a shim fd as stdin and exposes wasiImport/start like node:wasi', async () => {
    const stdin = new OpenFile(new File(new TextEncoder().encode('piped through a shim fd\n')));
    let out = '';
    const { OutputFd } = await import('../src/index.js');
    const host = new WasiHost({ args: ['guest', 'stdin'], fds: [stdin as never, new OutputFd((b) => (out += new TextDecoder().decode(b))), new OutputFd(() => {})] });
    const inst = new WebAssembly.Instance(await WebAssembly.compile(GUEST), { wasi_snapshot_preview1: host.wasiImport } as never);
    expect(host.start(inst as never)).toBe(0);
    expect(out).toBe('piped through a shim fd\n');
  });
});
