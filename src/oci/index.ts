export { layerTarEntries, OPAQUE_MARKER, WHITEOUT_PREFIX } from './layer.js';
export { MEDIA, REF_NAME, LAYERBOX_IMAGE, LAYERBOX_LAYER, type Descriptor, imageConfigJson, ociManifestJson, ociIndexJson } from './format.js';
export { exportOci, type OciFormat, type OciExportOptions, type StoredLayer } from './export.js';
export { importOci, detectOciArchive, type ArchiveReader, type ArchiveStreams, type StreamHasher, type OciImportOptions, type OciArchiveKind } from './import.js';
export { pushImage, pullImage, parseRegistryRef, type RegistryRef, type RegistryFetch, type PushOptions, type PushResult, type PullOptions, type PullResult, type RegistryRequest, type RegistryResponse, type Spool, type SpoolFactory, type NetOptions, fetchAdapter, memorySpool } from './registry.js';
export { type ArchiveMember, type ByteStream, MAX_DOCUMENT, readCapped } from './stream.js';
