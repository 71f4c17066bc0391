import type { Digest } from '../digest.js';
import { LayerboxError } from '../errno.js';
import type { LayerEntry, LayerTable } from '../layer.js';
import { baseName, parentOf } from '../path.js';
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
        node = { kind: 'file', ino: inoOf(e), meta: metaOf(e), layer, size: e.size ?? 0, chunks: [...(e.chunks ?? [])], nlink: 1, paths: [e.path] };
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
  if (!root) throw new LayerboxError('table without a root');
  return root;
}

export function mountLower(t: LayerTable, digest: Digest, index: number): LowerLayer {
  if (t.kind !== 'layer') throw new LayerboxError(`${digest} is not a layer table`);
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
