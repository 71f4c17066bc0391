import type { Digest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import type { LayerEntry, LayerTable } from '../layer.js';
import { type LayerRoot, type PageEntry, decodePage } from '../layer-tree.js';
import { baseName, joinPath, parentOf } from '../path.js';
import { type DirNode, type Leaf, type Meta, type Node, UPPER, WHITEOUT, hash52, newDir } from './nodes.js';

/** A read-only layer mounted in a stack: its tree and its redirects (origin path -> path in this layer). */
export interface LowerLayer {
  digest: Digest;
  index: number;
  root: DirNode;
  redirects: Map<string, string>;
  entries: number;
}

function metaOf(e: LayerEntry): Meta {
  return { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, atime: e.atime ?? e.mtime, ctime: e.ctime ?? e.mtime };
}

/**
 * Builds the in-memory tree of a table. Lower layers get inode numbers hashed
 * from (layer digest, path); upper snapshots carry their own.
 */
function buildTree(t: LayerTable, layer: number, inoOf: (e: LayerEntry) => number, onRedirect: (origin: string, path: string, node: DirNode) => void): DirNode {
  const dirs = new Map<string, DirNode>();
  const leaves = new Map<string, Leaf>();
  let root: DirNode | null = null;
  for (const e of t.entries) {
    const parent = e.path === '' ? null : dirs.get(parentOf(e.path))!;
    const name = baseName(e.path);
    let node: Node;
    switch (e.type) {
      case 'dir': {
        const d = newDir(layer, inoOf(e), metaOf(e), parent, name);
        d.opaque = !!e.opaque;
        if (e.redirect !== undefined) {
          d.redirect = e.redirect;
          onRedirect(e.redirect, e.path, d);
        }
        dirs.set(e.path, d);
        if (!parent) root = d;
        node = d;
        break;
      }
      case 'file':
        node = { kind: 'file', ino: inoOf(e), meta: metaOf(e), layer, size: e.size ?? 0, chunks: new Map(e.chunks), nlink: 1, paths: [e.path] };
        leaves.set(e.path, node);
        break;
      case 'symlink':
        node = { kind: 'symlink', ino: inoOf(e), meta: metaOf(e), layer, target: e.target ?? '', nlink: 1, paths: [e.path] };
        leaves.set(e.path, node);
        break;
      case 'hardlink': {
        const leaf = leaves.get(e.target!)!;
        leaf.nlink++;
        leaf.paths.push(e.path);
        node = leaf;
        break;
      }
      case 'whiteout':
        node = WHITEOUT;
        break;
    }
    parent?.children.set(name, node);
  }
  if (!root) throw new LayerboxError('table without a root', { code: 'CORRUPT' });
  return root;
}

/**
 * A directory of a tree-stored lower layer whose entries are read from its
 * page on first use (and then kept: lower layers never change).
 */
class PagedDir implements DirNode {
  readonly kind = 'dir' as const;
  parent: DirNode | null;
  redirect: string | null = null;
  opaque = false;
  private loaded: Map<string, Node> | null = null;
  constructor(
    private layerTree: PagedLayer,
    readonly path: string,
    private page: Digest,
    readonly ino: number,
    readonly meta: Meta,
    readonly layer: number,
    parent: DirNode | null,
    readonly name: string,
  ) {
    this.parent = parent;
  }
  get children(): Map<string, Node> {
    if (!this.loaded) {
      this.loaded = new Map();
      this.layerTree.fill(this, this.page, this.loaded);
    }
    return this.loaded;
  }
}

/** The page source of one mounted tree layer. */
class PagedLayer {
  constructor(readonly digest: Digest, readonly index: number, readonly chunkSize: number, private readPage: (d: Digest) => Uint8Array) {}

  ino(path: string): number {
    return hash52(`${this.digest}\0${path}`);
  }

  fill(dir: PagedDir, page: Digest, into: Map<string, Node>): void {
    const entries: PageEntry[] = decodePage(this.readPage(page), this.chunkSize, `layer ${this.digest}, page ${page}`);
    const links: PageEntry[] = [];
    for (const e of entries) {
      const path = joinPath(dir.path, e.name);
      const meta = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, atime: e.mtime, ctime: e.mtime };
      const paths = [path, ...(e.links ?? [])];
      switch (e.type) {
        case 'dir': {
          const d = new PagedDir(this, path, e.page!, this.ino(path), meta, this.index, dir, e.name);
          d.opaque = !!e.opaque;
          if (e.redirect !== undefined) d.redirect = e.redirect;
          into.set(e.name, d);
          break;
        }
        case 'file':
          into.set(e.name, { kind: 'file', ino: this.ino(path), meta, layer: this.index, size: e.size ?? 0, chunks: e.chunks ?? new Map(), nlink: paths.length, paths });
          break;
        case 'symlink':
          into.set(e.name, { kind: 'symlink', ino: this.ino(path), meta, layer: this.index, target: e.target ?? '', nlink: paths.length, paths });
          break;
        case 'hardlink':
          links.push(e);
          break;
        case 'whiteout':
          into.set(e.name, WHITEOUT);
          break;
      }
    }
    // Hard links last: their first name may be in this very directory.
    for (const e of links) into.set(e.name, this.leafAt(dir, e.target!));
  }

  /** The leaf a hard link names (by its first name's path in this layer). */
  private leafAt(from: DirNode, path: string): Leaf {
    let d: DirNode = from;
    while (d.parent) d = d.parent;
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const n = d.children.get(parts[i]!);
      if (i === parts.length - 1 && n && (n.kind === 'file' || n.kind === 'symlink')) return n;
      if (!n || n.kind !== 'dir') break;
      d = n;
    }
    throw new LayerboxError(`layer ${this.digest}: hard link to ${JSON.stringify(path)}, which is not a file of the layer`, { code: 'CORRUPT' });
  }
}

/** Mounts a tree-stored layer: only its root is read now; each directory's page when first looked into. */
export function mountLowerTree(root: LayerRoot, digest: Digest, index: number, readPage: (d: Digest) => Uint8Array): LowerLayer {
  const src = new PagedLayer(digest, index, root.chunkSize, readPage);
  const r = root.root;
  const dir = new PagedDir(src, '', root.page, src.ino(''), { mode: r.mode, uid: r.uid, gid: r.gid, mtime: r.mtime, atime: r.mtime, ctime: r.mtime }, index, null, '');
  dir.opaque = r.opaque;
  const redirects = new Map(root.redirects.map((x) => [x.origin, x.path]));
  return { digest, index, root: dir, redirects, entries: root.entries };
}

export function mountLower(t: LayerTable, digest: Digest, index: number): LowerLayer {
  if (t.kind !== 'layer') throw new LayerboxError(`${digest} is not a layer table`, { code: 'CORRUPT' });
  const redirects = new Map<string, string>();
  const root = buildTree(t, index, (e) => hash52(`${digest}\0${e.path}`), (origin, path) => redirects.set(origin, path));
  return { digest, index, root, redirects, entries: t.entries.length };
}

/** The upper's state as the overlay engine keeps it. */
export interface UpperState {
  /** Null while nothing was copied up or created. */
  root: DirNode | null;
  nextIno: number;
  /** Upper directories that carry a redirect, by origin path. */
  redirects: Map<string, DirNode>;
}

export function emptyUpper(): UpperState {
  return { root: null, nextIno: 0, redirects: new Map() };
}

export function mountUpper(t: LayerTable): UpperState {
  const redirects = new Map<string, DirNode>();
  const root = buildTree(t, UPPER, (e) => e.ino ?? 0, (origin, _path, node) => redirects.set(origin, node));
  return { root, nextIno: t.nextIno ?? 0, redirects };
}
