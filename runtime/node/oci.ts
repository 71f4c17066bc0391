import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { type ArchiveReader, type Digest, LayerboxError, type OciFormat, type PullResult, type PushResult, type Store, detectOciArchive, exportOci, importOci, pullImage, pushImage, readTar, writeTar } from '../../src/index.js';

/** Fixed level, no name, no timestamp (zlib writes mtime 0): the same tar always gives the same bytes. */
export function deterministicGzip(tar: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(tar, { level: 6, memLevel: 8, windowBits: 15, strategy: constants.Z_DEFAULT_STRATEGY }));
}

function gunzip(data: Uint8Array): Uint8Array {
  return new Uint8Array(gunzipSync(data));
}

/** Images as an OCI image layout in a tar (`oci`) or a `docker save` archive (`docker`). */
export async function exportOciArchive(store: Store, images: string[], format: OciFormat): Promise<Uint8Array> {
  return writeTar(await exportOci(store, images, { format, gzip: deterministicGzip }));
}

/** A reader over a tar's members (`./` prefixes dropped). */
export function tarReader(bytes: Uint8Array): ArchiveReader {
  const files = new Map<string, Uint8Array>();
  for (const e of readTar(bytes)) {
    const p = e.path.split('/').filter((c) => c !== '' && c !== '.').join('/');
    if (e.type === 'file' && e.data) files.set(p, e.data);
  }
  return async (path) => files.get(path) ?? null;
}

/** A reader over a host directory (an OCI layout): member paths are checked by the importer, never absolute or `..`. */
export function dirReader(dir: string): ArchiveReader {
  return async (path) => {
    if (path.startsWith('/') || path.split('/').includes('..')) return null;
    const p = join(dir, path);
    const st = await stat(p).catch(() => null);
    if (!st?.isFile()) return null;
    return new Uint8Array(await readFile(p));
  };
}

/**
 * Imports an OCI image layout (a directory, or a tar of one) or a docker save
 * archive (a tar, possibly gzip-compressed). Null when `src` is neither.
 */
export async function importOciArchive(store: Store, src: string, opts: { tag?: string } = {}): Promise<Array<{ digest: Digest; tags: string[] }> | null> {
  const st = await stat(src).catch(() => null);
  if (!st) throw new LayerboxError(`no such file or directory: ${src}`);
  let read: ArchiveReader;
  if (st.isDirectory()) read = dirReader(src);
  else {
    let bytes: Uint8Array = new Uint8Array(await readFile(src));
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      try {
        bytes = gunzip(bytes);
      } catch (e) {
        throw new LayerboxError(`${src}: bad gzip stream: ${(e as Error).message}`);
      }
    }
    try {
      read = tarReader(bytes);
    } catch {
      return null;
    }
  }
  if (!(await detectOciArchive(read))) return null;
  return importOci(store, read, { tag: opts.tag, gunzip });
}

/** Pushes an image to a registry (`host[:port]/repo[:tag]`), layers gzipped deterministically. */
export function pushToRegistry(store: Store, image: string, ref: string, opts: { onProgress?: (msg: string) => void } = {}): Promise<PushResult> {
  return pushImage(store, image, ref, { gzip: deterministicGzip, ...opts });
}

/** Pulls an image from a registry and tags it (the reference's `repo:tag`, or `opts.tag`). */
export function pullFromRegistry(store: Store, ref: string, opts: { tag?: string } = {}): Promise<PullResult> {
  return pullImage(store, ref, { gunzip, ...opts });
}
