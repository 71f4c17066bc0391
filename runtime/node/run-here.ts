import { closeSync } from 'node:fs';
import type { Store } from '../../src/index.js';
import { runGuest } from './guest.js';
import { openMountRoot } from './host-fs.js';
import { openStore } from './store.js';
import type { WorkerRequest } from './run.js';

/**
 * Runs a guest on this thread, as `layerbox run` does when nothing needs to
 * stop it: the same steps as the worker (runGuest), without starting one.
 * Over `store` when given (it must be the store at `req.store`), else over
 * the store opened with the request's cache size.
 */
export async function runInProcess(req: WorkerRequest, store?: Store): Promise<{ exitCode: number; trap?: string }> {
  const own = store ? null : await openStore(req.store, { cacheBytes: req.cacheBytes });
  const roots: number[] = [];
  try {
    for (const d of req.dirs) roots.push(openMountRoot(d.host));
    return await runGuest({ ...req, dirs: req.dirs.map((d, i) => ({ ...d, fd: roots[i] })) }, (store ?? own)!);
  } finally {
    for (const fd of roots) closeSync(fd);
    await own?.backend.close();
  }
}
