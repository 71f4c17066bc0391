import { open } from 'node:fs/promises';
import { type BundleIndex, LayerboxError, type Store, codeOfHostError, importBundleAt } from '../../src/index.js';
import { positionalReader, streamHasher } from './oci.js';

/**
 * Imports a layerbox bundle from the file `src`, read at offsets: memory
 * holds one batch of blobs, never the bundle, so bundles of any size (past
 * 2 GiB too) import.
 */
export async function importBundleFile(store: Store, src: string): Promise<BundleIndex> {
  const fh = await open(src, 'r').catch((e: unknown) => {
    throw new LayerboxError(`cannot read ${src}`, { code: codeOfHostError(e), cause: e });
  });
  try {
    // The size is taken once, from the open file: a file that shrinks later reads short, and is refused as truncated.
    const { size } = await fh.stat();
    return await importBundleAt(store, positionalReader(fh), size, { hasher: streamHasher });
  } finally {
    await fh.close();
  }
}
