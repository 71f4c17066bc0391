/**
 * layerbox for Node: the core plus the local directory store and host
 * imports. `openStore('memory:')` or `openStore('/path/to/store')`.
 */
export * from '../../src/index.js';
export { copyIntoBox, copyOutOfBox } from './copy.js';
export { importBundleFile } from './bundle.js';
export type { HostImportOptions, ImportProgress } from './import.js';
export { DirBackend, openDirBackend } from './dir-backend.js';
export { HostFs } from './host-fs.js';
export { stderrHostErrors } from './host-error.js';
export { runInWorker, TIMEOUT_EXIT, type WorkerRequest } from './run.js';
export { runInProcess } from './run-here.js';
export { NodeStore, openStore } from './store.js';
export { exportOciArchive, exportOciArchiveToFile, exportBundleToFile, importOciArchive, deterministicGzip, tarReader, dirReader, pushToRegistry, pullFromRegistry , gunzipStream, deterministicGzipStream, nodeFetch, fileSpool } from './oci.js';
