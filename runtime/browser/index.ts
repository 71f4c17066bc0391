/**
 * layerbox for browsers: the host-neutral core with the same surface as the
 * Node entry. `openStore('memory:')`.
 */
import { MemoryBackend, Store, type StoreOptions, LayerboxError } from '../../src/index.js';

export * from '../../src/index.js';

/** Opens a store by target. Browsers: `memory:`. */
export async function openStore(target: string, opts: StoreOptions = {}): Promise<Store> {
  if (target === 'memory:') return new Store(new MemoryBackend(opts.hasher), opts);
  throw new LayerboxError(`unsupported store target in the browser: ${target} (use memory:)`);
}
