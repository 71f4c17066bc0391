// The Node store: a directory (or memory) backend with the Node host's hasher,
// clock and importers, and guests run in a worker over a directory store.
// Kept apart from index.ts so the command line loads only what a command uses.
import { type Digest, type ImportOptions, MemoryBackend, Store, type StoreOptions, type Backend } from '../../src/index.js';
import { DirBackend, openDirBackend } from './dir-backend.js';
import { runInWorker } from './run.js';
import { nodeClock, nodeHasher } from './host.js';
import type { HostImportOptions } from './import.js';

/** A store with the Node host's imports. */
export class NodeStore extends Store {
  /** Imports a host directory as a one-layer image; returns its digest. */
  importDirectory(dir: string, opts: ImportOptions & HostImportOptions = {}): Promise<Digest> {
    return this.importLayer(async (b) => (await import('./import.js')).addHostDirectory(b, dir, opts), { createdBy: `layerbox image import ${dir}`, ...opts });
  }

  /** Imports a tar (or .tar.gz) as a one-layer image. */
  importTar(file: string, opts: ImportOptions & HostImportOptions = {}): Promise<Digest> {
    return this.importLayer(async (b) => (await import('./import.js')).addTar(b, file, opts), { createdBy: `layerbox image import ${file}`, ...opts });
  }
}

/** Opens a store: `memory:` or a directory path (created if missing). */
export async function openStore(target: string, opts: StoreOptions & { create?: boolean } = {}): Promise<NodeStore> {
  const o = { hasher: nodeHasher, clock: nodeClock, ...opts };
  const backend: Backend = target === 'memory:' ? new MemoryBackend(o.hasher) : await openDirBackend(target, { create: opts.create });
  const store = new NodeStore(backend, o);
  if (backend instanceof DirBackend) {
    // Over a directory store, guests run in a worker that opens the store itself, so a timeout can stop them.
    store.runner = async (box, wasm, opts) => {
      if (box.name === null || opts.mounts?.length || (opts.stdin !== undefined && typeof opts.stdin !== 'string' && !(opts.stdin instanceof Uint8Array)) || !(wasm instanceof Uint8Array) || opts.extraFds?.length) return null;
      const stdin = typeof opts.stdin === 'string' ? new TextEncoder().encode(opts.stdin) : opts.stdin;
      return runInWorker({ store: backend.location, box: box.name, program: wasm, args: opts.args ?? ['main'], env: (opts.env ?? []).slice(box.config.env.length), dirs: [], stdio: 'pipe', stdin }, { timeoutMs: opts.timeoutMs, onStdout: opts.stdout, onStderr: opts.stderr });
    };
  }
  return store;
}
