import { capMemory } from './wasm-limits.js';
import type { Digest } from './digest.js';
import { Errno, LayerboxError, describeErrno, errnoOf } from './errno.js';
import { exportTar } from './archive.js';
import type { ImageManifest } from './image.js';
import { type LayerTable, chunksOf, decodeLayer } from './layer.js';
import { type Change, diffOverlay } from './overlay/diff.js';
import { Overlay } from './overlay/overlay.js';
import { upperToTable } from './overlay/snapshot.js';
import { type LowerLayer, emptyUpper, mountUpper } from './overlay/tree.js';
import { BoxJournal, type JournalHeader, MemoryJournalLog, journalApplies, replayTable, scanJournal } from './store/journal.js';
import type { BoxRecord, JournalSource } from './store/backend.js';
import { type GuestIo, type Mount, type RunResult, guestFds, runModule } from './run.js';
import { WasiHost } from './wasi/host.js';
import type { Store } from './store/store.js';

/** Journal size from which a lazy flush folds the journal into the store anyway (the size from which it would be compacted). */
export const FOLD_AFTER_BYTES = 32 << 20;

/** Options of `box.run`. */
export type RunOptions = Omit<GuestIo, 'stdin'> & {
  /** Bytes up front, a blocking pull function, or (worker runs) a stream fed while the guest runs. */
  stdin?: GuestIo['stdin'] | AsyncIterable<Uint8Array>;
  mounts?: Mount[];
  timeoutMs?: number;
  /** The most linear memory the guest may have (bytes); past it `memory.grow` fails. Needs the module's bytes. */
  maxMemoryBytes?: number;
};

/**
 * A sandbox root: an image plus one writable upper. `fs` is the merged view;
 * changes stay in memory until `flush` (or `commit`) writes them to the store.
 */
export class Box {
  private constructor(
    readonly store: Store,
    /** Null for an ephemeral box (over an image, never persisted). */
    readonly name: string | null,
    private record: BoxRecord,
    private manifest: ImageManifest,
    private lowers: LowerLayer[],
    private overlay: Overlay,
    private journal: BoxJournal | null,
  ) {}

  /** @internal use Store.openBox */
  static async open(store: Store, name: string, record: BoxRecord): Promise<Box> {
    const manifest = await store.manifest(record.image);
    const lowers = await store.mountImage(manifest);
    // A store that cannot write synchronously (IndexedDB on a page) folds what a worker journaled first.
    let held: PageJournalLog | null = null;
    const pending = !store.backend.openJournal && store.backend.readJournal ? await store.backend.readJournal(name) : null;
    if (pending?.size) {
      try {
        record = await store.checkpoint(name, record);
      } catch (e) {
        const errno = errnoOf(e);
        if (errno !== Errno.DQUOT && errno !== Errno.NOSPC) throw e;
        // No room to fold it (a full quota): the box opens from the journal read into memory, and is folded once there is room.
        held = await PageJournalLog.load(pending);
      }
    }
    const base = record.upper ? decodeLayer(await store.backend.getBlob(record.upper), `upper ${record.upper}`, 'upper') : null;
    const log = store.backend.openJournal?.(name) ?? held ?? new PageJournalLog();
    const header = journalHeader(name, record);
    const scan = await scanJournal(log, (b) => store.digest(b));
    const table = journalApplies(scan, header) ? replayTable(base, scan.metas, store.chunkSize) : base;
    const journal = new BoxJournal(log, { header, scan, digest: (b) => store.digest(b), cacheBytes: store.cacheBytes, compactBytes: store.journalCompactBytes, random: store.random });
    return Box.assemble(store, name, record, manifest, lowers, table ? mountUpper(table) : emptyUpper(), journal);
  }

  /** A box over an image whose changes live only in memory (`run --image`), spilling to a scratch log where the store has one. */
  static async ephemeral(store: Store, image: Digest): Promise<Box> {
    const record: BoxRecord = { image, upper: null, created: store.nowIso() };
    const manifest = await store.manifest(image);
    const lowers = await store.mountImage(manifest);
    const log = store.backend.openJournal?.(null);
    const journal = log ? new BoxJournal(log, { header: null, scan: null, digest: (b) => store.digest(b), cacheBytes: store.cacheBytes, compactBytes: store.journalCompactBytes, random: store.random }) : null;
    return Box.assemble(store, null, record, manifest, lowers, emptyUpper(), journal);
  }

  private static assemble(store: Store, name: string | null, record: BoxRecord, manifest: ImageManifest, lowers: LowerLayer[], upper: ReturnType<typeof emptyUpper>, journal: BoxJournal | null): Box {
    const box = new Box(store, name, record, manifest, lowers, null as unknown as Overlay, journal);
    box.overlay = box.makeOverlay(upper);
    return box;
  }

  /** An overlay over the box's lowers with its limits, reading chunks from its journal first, then the store. */
  private makeOverlay(upper: ReturnType<typeof emptyUpper>): Overlay {
    const o = this.store.overlayOptions();
    const j = this.journal;
    const read = o.readChunk, into = o.readChunksInto;
    // A run of chunks with any in the journal is read chunk by chunk (journal first): the store does not have them.
    const readChunksInto = j && into ? (run: Digest[], lengths: number[], dest: Uint8Array, from: number) => !run.some((d) => j.has(d)) && into(run, lengths, dest, from) : into;
    const ov = new Overlay(this.lowers, upper, { ...o, readChunk: j ? (d) => j.readChunk(d) ?? read(d) : read, readChunksInto, journal: j ?? undefined, limits: this.record.limits });
    j?.attach(ov);
    return ov;
  }

  /** Reloads the persisted state (after another thread or process changed the box). */
  async reload(): Promise<void> {
    if (this.name === null) return;
    this.journal?.close();
    const fresh = await Box.open(this.store, this.name, await this.store.boxRecord(this.name));
    Object.assign(this, { record: fresh.record, manifest: fresh.manifest, lowers: fresh.lowers, overlay: fresh.overlay, journal: fresh.journal });
  }

  /** Releases the box's journal (its log's host handle). The box is not usable afterwards. */
  close(): void {
    this.journal?.close();
  }


  /**
   * Runs a WASI command with this box as `/`. Its environment is the image's
   * config plus `env`; nothing of the host's. Changes are flushed when it ends.
   * With `timeoutMs`, hosts that can (Node, over a directory store) run it in
   * a worker they can stop.
   */
  async run(wasm: Uint8Array | WebAssembly.Module, opts: RunOptions = {}): Promise<RunResult> {
    const env = [...this.config.env, ...(opts.env ?? [])];
    if (opts.maxMemoryBytes !== undefined) {
      if (!(wasm instanceof Uint8Array)) throw new LayerboxError('maxMemoryBytes needs the module as bytes, not a compiled WebAssembly.Module', { code: 'INVALID' });
      wasm = capMemory(wasm, opts.maxMemoryBytes);
    }
    if (this.store.runner) {
      await this.flush();
      // The runner opens the box's journal itself: this process lets go of it meanwhile.
      this.journal?.close();
      const r = await this.store.runner(this, wasm, { ...opts, env });
      if (r) {
        await this.reload();
        return r;
      }
    }
    const stdin = opts.stdin;
    if (stdin !== undefined && typeof stdin === 'object' && !(stdin instanceof Uint8Array)) throw new LayerboxError('a streamed stdin needs a worker runner (a browser page that is cross-origin isolated)', { code: 'UNSUPPORTED' });
    const module = wasm instanceof Uint8Array ? await WebAssembly.compile(wasm) : wasm;
    const r = runModule(module, [{ guest: '/', fs: this.overlay }, ...(opts.mounts ?? [])], { ...opts, stdin, env });
    await this.flush();
    return r;
  }

  /**
   * A WASI host over this box for glue that drives the module itself (a
   * reactor such as ruby.wasm: `initialize(instance)`, then calls into it).
   * Call `flush()` when done to keep the changes.
   */
  wasi(opts: GuestIo & { mounts?: Mount[] } = {}): WasiHost {
    const env = [...this.config.env, ...(opts.env ?? [])];
    const collect = { out: [] as Uint8Array[], err: [] as Uint8Array[] };
    return new WasiHost({ args: opts.args ?? ['main'], env, fds: guestFds([{ guest: '/', fs: this.overlay }, ...(opts.mounts ?? [])], opts, collect), wasiEnv: opts.wasiEnv, trace: opts.trace, onHostError: opts.onHostError });
  }

  /** The merged view the guest sees. */
  get fs(): Overlay {
    return this.overlay;
  }

  get image(): Digest {
    return this.record.image;
  }

  get config() {
    return this.manifest.config;
  }

  /** Where the box stands in the store (its image and persisted upper). */
  get state(): BoxRecord {
    return this.record;
  }

  /**
   * Makes every change durable, then folds the box's journal into the store
   * (its upper as one snapshot, its chunks in a pack) and points the box at
   * it. A failure (a full disk, a quota) throws, and the box loses nothing:
   * what was not stored stays in memory, and a later flush retries.
   * `lazy`: a journal kept in a store file and still under FOLD_AFTER_BYTES
   * stays as it is, durable, for the next fold (a run's end does this: its
   * cost then follows what the run changed, not the size of the upper).
   */
  async flush(opts: { lazy?: boolean } = {}): Promise<void> {
    if (this.name === null) return;
    const page = this.journal?.source instanceof PageJournalLog ? this.journal.source : null;
    try {
      if (page) page.flushing = true;
      try {
        this.overlay.sync();
      } finally {
        if (page) page.flushing = false;
      }
      // Durable in a journal of the store's own (a file): a small one is left for the next fold (commit, fork, export, or a run that finds it large).
      if (opts.lazy && !page && this.journal && this.journal.size < FOLD_AFTER_BYTES) return;
      this.record = await this.store.checkpoint(this.name, this.record, this.journal?.source);
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === undefined) throw e;
      throw new LayerboxError(`box ${this.name}: its changes could not be stored: ${describeErrno(errno)} (it keeps what was stored last)`, { errno, cause: e });
    }
    this.journal?.rebase(journalHeader(this.name, this.record));
  }

  /**
   * Reads a whole file. Where the store cannot read synchronously (IndexedDB,
   * HTTP) its chunks are loaded first; `fs.readFile` needs them loaded.
   */
  async readFile(path: string): Promise<Uint8Array> {
    const h = this.overlay.open(path);
    const node = h.node;
    // Chunks the store lacks are in the box's journal (read from it as the file is).
    if (node.kind === 'file' && this.store.backend.preload) await this.store.backend.preload([...node.chunks.values()].filter((c): c is Digest => typeof c === 'string' && this.store.backend.hasBlob(c)));
    return h.read(0, h.size);
  }

  /**
   * Loads every chunk the box can reach, so `box.fs` (synchronous) can read
   * anything on stores that read asynchronously (IndexedDB, HTTP) — for
   * guests run on the page itself, such as a reactor driven by its own glue.
   */
  async load(): Promise<void> {
    if (!this.store.backend.preload) return;
    const want = new Set<Digest>();
    const add = (t: LayerTable) => {
      for (const c of chunksOf(t)) want.add(c);
    };
    for (const l of this.manifest.layers) add(await this.store.layerTable(l.digest));
    if (this.record.upper) add(decodeLayer(await this.store.backend.getBlob(this.record.upper), `upper ${this.record.upper}`, 'upper'));
    await this.store.backend.preload([...want]);
  }

  /** The box's merged view as a tar archive (uncompressed). */
  exportTar(): Uint8Array {
    return exportTar(this.overlay);
  }

  /** What changed against the image, like `docker diff`. */
  diff(): Change[] {
    return diffOverlay(this.overlay);
  }

  /**
   * Turns the upper into a new layer and image (parent: the current image),
   * tags it, and moves the box onto it with an empty upper. O(changes).
   */
  async commit(opts: { tag?: string; message?: string } = {}): Promise<Digest> {
    if (this.name === null) throw new LayerboxError('an ephemeral box cannot be committed', { code: 'INVALID' });
    // Everything stored first: a box whose data is not all in the store is never committed.
    await this.flush();
    const table = upperToTable(this.overlay.upper, 'layer', this.store.chunkSize, this.lowers.at(-1)!.root);
    const dataSize = this.addedBytes(table.entries);
    const img = await this.store.writeCommit(this.name, this.record, this.record.image, { table, dataSize }, [], opts);
    const layer = await this.store.mountLayer(img.layerDigest, this.lowers.length, table);
    this.lowers = [...this.lowers, layer];
    this.manifest = img.manifest;
    this.record = { ...this.record, image: img.digest, upper: null };
    this.journal?.rebase(journalHeader(this.name, this.record));
    this.overlay = this.makeOverlay(emptyUpper());
    return img.digest;
  }

  /** Bytes of chunks the layer holds that the image did not have at the same paths. */
  private addedBytes(entries: ReturnType<typeof upperToTable>['entries']): number {
    const cs = this.store.chunkSize;
    const counted = new Set<string>();
    let total = 0;
    for (const e of entries) {
      if (e.type !== 'file') continue;
      const low = this.overlay.lowerLookup(e.path);
      const old = new Set(low?.leaf?.kind === 'file' ? low.leaf.chunks.values() : []);
      e.chunks!.forEach((c, k) => {
        if (c && !old.has(c) && !counted.has(c)) {
          counted.add(c);
          total += Math.min(cs, e.size! - k * cs);
        }
      });
    }
    return total;
  }

  /** Drops every change: the box sees its image again. */
  async reset(): Promise<void> {
    if (this.name !== null) {
      await this.store.resetBox(this.name);
      this.record = { ...this.record, upper: null };
      this.journal?.rebase(journalHeader(this.name, this.record));
    }
    this.overlay = this.makeOverlay(emptyUpper());
  }

  /** Flushes, then copies this box under a new name (O(1)). */
  async fork(newName: string): Promise<Box> {
    if (this.name === null) throw new LayerboxError('an ephemeral box cannot be forked', { code: 'INVALID' });
    await this.flush();
    await this.store.forkBox(this.name, newName);
    return this.store.openBox(newName);
  }
}

/**
 * The log of a box on a store that cannot write synchronously (IndexedDB on
 * a page): a guest's fsync there is refused (ENOTSUP: nothing is durable
 * until a flush), while a flush's own sync goes in, since the flush stores it.
 */
class PageJournalLog extends MemoryJournalLog {
  flushing = false;
  constructor() {
    super(false);
  }
  override append(parts: readonly Uint8Array[], durable: boolean): void {
    super.append(parts, durable && !this.flushing);
  }
  /** The stored journal this one copies: it goes when this one is folded in (removed). */
  private stored: JournalSource | null = null;
  /** A copy of a stored journal, read a piece at a time. */
  static async load(src: JournalSource): Promise<PageJournalLog> {
    const log = new PageJournalLog();
    for (let at = 0; at < src.size; at += 1 << 20) log.append([await src.read(at, Math.min(1 << 20, src.size - at))], false);
    log.stored = src;
    return log;
  }
  override remove(): void | Promise<void> {
    super.remove();
    const stored = this.stored;
    this.stored = null;
    return stored?.remove();
  }
}

/** The header a box's journal must carry to apply to its record. */
function journalHeader(name: string, r: BoxRecord): JournalHeader {
  return { box: name, image: r.image, upper: r.upper, created: r.created };
}
