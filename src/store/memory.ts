import { digestOf, type Digest, type Hasher, defaultHasher } from '../digest.js';
import { LayerboxError } from '../errno.js';
import { type Backend, type BackendStats, type BlobProblem, type AsyncJournalLog, type JournalLog, type JournalSource, type RefsDoc, emptyRefs, Mutex } from './backend.js';
import { MemoryJournalLog } from './journal.js';

/** Blobs and refs in memory: tests and ephemeral runs. */
export class MemoryBackend implements Backend {
  readonly kind = 'memory';
  readonly location = 'memory:';
  private blobs = new Map<Digest, Uint8Array>();
  private refs: RefsDoc = emptyRefs();
  private mutex = new Mutex();
  constructor(private hash: Hasher = defaultHasher) {}

  lock<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(fn);
  }
  hasBlob(digest: Digest): boolean {
    return this.blobs.has(digest);
  }
  async getBlob(digest: Digest): Promise<Uint8Array> {
    return this.readBlobSync(digest);
  }
  readBlobSync(digest: Digest): Uint8Array {
    const b = this.blobs.get(digest);
    if (!b) throw new LayerboxError(`blob ${digest} is missing from the store`, { code: 'NOT_FOUND' });
    return b;
  }
  async putBlobs(blobs: ReadonlyArray<{ digest: Digest; data: Uint8Array }>): Promise<void> {
    for (const { digest, data } of blobs) if (!this.blobs.has(digest)) this.blobs.set(digest, data.slice());
  }
  async readRefs(): Promise<RefsDoc> {
    return JSON.parse(JSON.stringify(this.refs)) as RefsDoc;
  }
  async writeRefs(refs: RefsDoc): Promise<void> {
    this.refs = JSON.parse(JSON.stringify(refs)) as RefsDoc;
  }
  async listBlobs() {
    return [...this.blobs].map(([digest, d]) => ({ digest, size: d.length }));
  }
  async deleteBlobs(keep: (digest: Digest) => boolean) {
    let blobs = 0, bytes = 0;
    for (const [d, data] of this.blobs) if (!keep(d)) { this.blobs.delete(d); blobs++; bytes += data.length; }
    return { blobs, bytes };
  }
  async verify(): Promise<BlobProblem[]> {
    const out: BlobProblem[] = [];
    for (const [d, data] of this.blobs) if (digestOf(data, this.hash) !== d) out.push({ digest: d, where: 'memory', problem: 'content does not match its digest' });
    return out;
  }
  async stats(): Promise<BackendStats> {
    let bytes = 0;
    for (const d of this.blobs.values()) bytes += d.length;
    return { blobs: this.blobs.size, bytes };
  }
  async close(): Promise<void> {}
  private journals = new Map<string, MemoryJournalLog>();
  openJournal(box: string | null): JournalLog {
    if (box === null) return new MemoryJournalLog();
    let j = this.journals.get(box);
    if (!j) this.journals.set(box, (j = new MemoryJournalLog()));
    return j;
  }
  /** The same logs, for a page that serves a guest worker (parts are gathered first: an append lands whole or not at all). */
  async openJournalAsync(box: string | null): Promise<AsyncJournalLog> {
    const log = this.openJournal(box);
    const gather = async (parts: AsyncIterable<Uint8Array>) => {
      const all: Uint8Array[] = [];
      for await (const p of parts) all.push(p.slice());
      return all;
    };
    return {
      get size() { return log.size; },
      read: async (offset, length) => log.read(offset, length),
      append: async (parts, durable) => {
        const all = await gather(parts);
        log.append(all, durable);
      },
      replace: async (parts) => log.replace(await gather(parts)),
      remove: async () => log.remove(),
      close: async () => log.close(),
    };
  }
  async readJournal(box: string): Promise<JournalSource | null> {
    const j = this.journals.get(box);
    return j?.size ? j : null;
  }
}

