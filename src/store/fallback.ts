import type { Digest } from '../digest.js';
import type { AsyncJournalLog, Backend, BackendStats, BlobProblem, JournalLog, JournalSource, RefsDoc } from './backend.js';

/**
 * A writable store with a read-only one behind it (e.g. IndexedDB over an
 * HTTP store): blobs the local store lacks are read from the remote on
 * demand, and the remote's tags are visible. Everything written goes local.
 */
export class FallbackBackend implements Backend {
  readonly kind: string;
  readonly location: string;
  constructor(readonly local: Backend, readonly remote: Backend) {
    this.kind = `${local.kind}+${remote.kind}`;
    this.location = `${local.location} over ${remote.location}`;
    // Journals are the local store's, with the same abilities (a box on a page checkpoints first where there is no synchronous one).
    if (local.openJournal) this.openJournal = (box) => local.openJournal!(box);
    if (local.readJournal) this.readJournal = (box) => local.readJournal!(box);
    if (local.openJournalAsync) this.openJournalAsync = (box) => local.openJournalAsync!(box);
  }
  openJournal?: (box: string | null) => JournalLog;
  readJournal?: (box: string) => Promise<JournalSource | null>;
  openJournalAsync?: (box: string | null) => Promise<AsyncJournalLog>;
  lock<T>(fn: () => Promise<T>): Promise<T> {
    return this.local.lock(fn);
  }
  hasBlob(d: Digest): boolean {
    return this.local.hasBlob(d) || this.remote.hasBlob(d);
  }
  getBlob(d: Digest): Promise<Uint8Array> {
    return this.local.hasBlob(d) ? this.local.getBlob(d) : this.remote.getBlob(d);
  }
  readBlobSync(d: Digest): Uint8Array {
    return this.local.hasBlob(d) ? this.local.readBlobSync(d) : this.remote.readBlobSync(d);
  }
  putBlobs(blobs: ReadonlyArray<{ digest: Digest; data: Uint8Array }>): Promise<void> {
    return this.local.putBlobs(blobs);
  }
  async readRefs(): Promise<RefsDoc> {
    const [l, r] = await Promise.all([this.local.readRefs(), this.remote.readRefs()]);
    return { tags: { ...r.tags, ...l.tags }, boxes: l.boxes };
  }
  writeRefs(refs: RefsDoc): Promise<void> {
    return this.local.writeRefs(refs);
  }
  listBlobs(): Promise<Array<{ digest: Digest; size: number }>> {
    return this.local.listBlobs();
  }
  /** Only local blobs are collected; what the remote holds counts as present. */
  deleteBlobs(keep: (d: Digest) => boolean): Promise<{ blobs: number; bytes: number }> {
    return this.local.deleteBlobs(keep);
  }
  verify(): Promise<BlobProblem[]> {
    return this.local.verify();
  }
  stats(): Promise<BackendStats> {
    return this.local.stats();
  }
  async preload(digests: Digest[]): Promise<void> {
    const local = digests.filter((d) => this.local.hasBlob(d));
    const remote = digests.filter((d) => !this.local.hasBlob(d));
    await Promise.all([this.local.preload?.(local), this.remote.preload?.(remote)]);
  }
  async close(): Promise<void> {
    await Promise.all([this.local.close(), this.remote.close()]);
  }
}
