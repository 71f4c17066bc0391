/**
 * layerbox core: host-neutral. Layers, images, the copy-on-write overlay,
 * boxes, diff and commit over any storage backend.
 */
export { Errno, FsError, LayerboxError, LayerboxCode, codeOfErrno, codeOfHostError, describeErrno, errnoName, errnoOf, hostErrno, hostFailure, isCode, type LayerboxErrorOptions } from './errno.js';
export { type Digest, type Hasher, defaultHasher, digestOf, isDigest, shortDigest } from './digest.js';
export { DEFAULT_CHUNK_SIZE, type LayerEntry, type LayerTable, decodeLayer, encodeLayer } from './layer.js';
export { type ImageConfig, type ImageManifest, type HistoryEntry, parseTag } from './image.js';
export { capMemory, WASM_PAGE } from './wasm-limits.js';
export { LayerBuilder, type EntryMeta } from './builder.js';
export { Overlay, FileHandle, type Stat, type DirEntry, type FileType, type OpenOptions, type OverlayOptions, type BoxLimits, type UpperUsage } from './overlay/overlay.js';
export { type Change } from './overlay/diff.js';
export { Box, type RunOptions } from './box.js';
export { Store, type StoreOptions, type ImageInfo, type HistoryRow, type BoxInfo, type ImportOptions, type FsckReport } from './store/store.js';
export { type Backend, type BoxRecord, type RefsDoc, type BlobProblem, type BackendStats, Mutex, emptyRefs } from './store/backend.js';
export { MemoryBackend } from './store/memory.js';
export { runModule, guestFds, type Mount, type GuestIo, type RunResult } from './run.js';
export { WasiHost, WasiExit, defaultWasiEnv, type WasiEnv, type WasiOptions } from './wasi/host.js';
export { Fd, Filestat, Fdstat, Dirent, Prestat } from './wasi/fd.js';
export { DirFd, FileFd, attempt, toFilestat, type FsFdContext } from './wasi/fs-fd.js';
export { InputFd, OutputFd, bytesSource } from './wasi/stdio.js';
export type { GuestFs, GuestFile } from './wasi/guest-fs.js';
export * as wasiDefs from './wasi/defs.js';

import { Store, type StoreOptions } from './store/store.js';
import { MemoryBackend } from './store/memory.js';

/** A store kept in memory (tests, ephemeral runs). */
export function memoryStore(opts: StoreOptions = {}): Store {
  return new Store(new MemoryBackend(opts.hasher), opts);
}
export { readTar, readTarAt, readTarStream, writeTar, tarPieces, type TarEntry, type TarStreamMember } from './tar.js';
export { treeEntries, exportTar, addTarBytes } from './archive.js';
export { runInGuestWorker, TIMEOUT_EXIT as REMOTE_TIMEOUT_EXIT, type GuestWorker, type RemoteRunOptions } from './remote/host.js';
export { guestMain } from './remote/guest.js';
export type { StartMessage, GuestMessage } from './remote/protocol.js';
export { HttpBackend } from './store/http.js';
export { FallbackBackend } from './store/fallback.js';
export { exportBundle, bundlePieces, importBundle, importBundleAt, type BundleIndex, type BundleReadAt } from './bundle.js';
export * from './oci/index.js';
