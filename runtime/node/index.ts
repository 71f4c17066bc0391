/**
 * layerbox for Node: the core plus the local directory store and host
 * imports. `openStore('memory:')` or `openStore('/path/to/store')`.
 */
import { type Digest, type ImportOptions, MemoryBackend, Store, type StoreOptions, type Backend } from '../../src/index.js';
import { openDirBackend } from './dir-backend.js';
import { nodeClock, nodeHasher } from './host.js';
import { type HostImportOptions, addHostDirectory, addTar } from './import.js';

export * from '../../src/index.js';
export { copyIntoBox, copyOutOfBox } from './copy.js';
export type { HostImportOptions, ImportProgress } from './import.js';
export { DirBackend, openDirBackend } from './dir-backend.js';

/** A store with the Node host's imports. */
export class NodeStore extends Store {
  /** Imports a host directory as a one-layer image; returns its digest. */
  importDirectory(dir: string, opts: ImportOptions & HostImportOptions = {}): Promise<Digest> {
    return this.importLayer((b) => addHostDirectory(b, dir, opts), { createdBy: `layerbox image import ${dir}`, ...opts });
  }

  /** Imports a tar (or .tar.gz) as a one-layer image. */
  importTar(file: string, opts: ImportOptions & HostImportOptions = {}): Promise<Digest> {
    return this.importLayer((b) => addTar(b, file, opts), { createdBy: `layerbox image import ${file}`, ...opts });
  }
}

/** Opens a store: `memory:` or a directory path (created if missing). */
export async function openStore(target: string, opts: StoreOptions & { create?: boolean } = {}): Promise<NodeStore> {
  const o = { hasher: nodeHasher, clock: nodeClock, ...opts };
  const backend: Backend = target === 'memory:' ? new MemoryBackend(o.hasher) : await openDirBackend(target, { create: opts.create });
  return new NodeStore(backend, o);
}
