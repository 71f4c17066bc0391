import { mkdir, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/** The image every scenario starts from: a small project tree. */
export async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'data/sub'), { recursive: true });
  await mkdir(join(root, 'cache/old'), { recursive: true });
  await writeFile(join(root, 'etc/config.txt'), 'mode=slow\n');
  await writeFile(join(root, 'etc/remove-me'), 'bye\n');
  await writeFile(join(root, 'data/a.txt'), 'alpha\n');
  await writeFile(join(root, 'data/sub/b.txt'), 'beta\n');
  await writeFile(join(root, 'cache/old/x.bin'), 'xx');
  await writeFile(join(root, 'cache/y.bin'), 'yy');
}


/** The built CLI, as a user runs it. */
export const CLI = resolve('dist/cli.js');

/** Runs the built CLI on a store; never throws, returns its status and output. */
export async function lb(store: string, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '' }, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e: any) {
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
