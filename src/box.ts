import type { Digest } from './digest.js';
import type { ImageManifest } from './image.js';
import { decodeLayer, encodeLayer } from './layer.js';
import { type Change, diffOverlay } from './overlay/diff.js';
import { Overlay } from './overlay/overlay.js';
import { collectDirtyChunks, upperToTable } from './overlay/snapshot.js';
import { type LowerLayer, emptyUpper, mountUpper } from './overlay/tree.js';
import type { BoxRecord } from './store/backend.js';
import type { Store } from './store/store.js';

/**
 * A sandbox root: an image plus one writable upper. `fs` is the merged view;
 * changes stay in memory until `flush` (or `commit`) writes them to the store.
 */
export class Box {
  private constructor(
    readonly store: Store,
    readonly name: string,
    private record: BoxRecord,
    private manifest: ImageManifest,
    private lowers: LowerLayer[],
    private overlay: Overlay,
  ) {}

  /** @internal use Store.openBox */
  static async open(store: Store, name: string, record: BoxRecord): Promise<Box> {
    const manifest = await store.manifest(record.image);
    const lowers = await store.mountImage(manifest);
    const upper = record.upper ? mountUpper(decodeLayer(await store.backend.getBlob(record.upper), `upper ${record.upper}`, 'upper')) : emptyUpper();
    return new Box(store, name, record, manifest, lowers, new Overlay(lowers, upper, store.overlayOptions()));
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

  /** Writes the upper's changes to the store (chunks, then the upper snapshot, then the box pointer). */
  async flush(): Promise<void> {
    const upper = this.overlay.upper;
    const chunks = collectDirtyChunks(upper, (b) => this.store.digest(b));
    let digest: Digest | null = null;
    const blobs = [...chunks].map(([d, data]) => ({ digest: d, data }));
    if (upper.root) {
      const bytes = encodeLayer(upperToTable(upper, 'upper', this.store.chunkSize, this.lowers.at(-1)!.root));
      digest = this.store.digest(bytes);
      blobs.push({ digest, data: bytes });
    }
    if (digest === this.record.upper) return;
    this.record = await this.store.writeUpper(this.name, this.record, digest, blobs);
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
    const upper = this.overlay.upper;
    const chunks = collectDirtyChunks(upper, (b) => this.store.digest(b));
    const table = upperToTable(upper, 'layer', this.store.chunkSize, this.lowers.at(-1)!.root);
    const dataSize = this.addedBytes(table.entries);
    const img = await this.store.writeCommit(this.name, this.record, this.record.image, { table, dataSize }, [...chunks].map(([digest, data]) => ({ digest, data })), opts);
    const layer = await this.store.mountLayer(img.layerDigest, this.lowers.length, table);
    this.lowers = [...this.lowers, layer];
    this.manifest = img.manifest;
    this.record = { ...this.record, image: img.digest, upper: null };
    this.overlay = new Overlay(this.lowers, emptyUpper(), this.store.overlayOptions());
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
      const old = new Set(low?.leaf?.kind === 'file' ? low.leaf.chunks : []);
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
    await this.store.resetBox(this.name);
    this.record = { ...this.record, upper: null };
    this.overlay = new Overlay(this.lowers, emptyUpper(), this.store.overlayOptions());
  }

  /** Flushes, then copies this box under a new name (O(1)). */
  async fork(newName: string): Promise<Box> {
    await this.flush();
    await this.store.forkBox(this.name, newName);
    return this.store.openBox(newName);
  }
}
