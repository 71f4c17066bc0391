import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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

