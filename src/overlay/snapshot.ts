import type { Digest } from '../digest.js';
import { type LayerEntry, type LayerTable, comparePaths } from '../layer.js';
import { joinPath } from '../path.js';
import { isZero } from './content.js';
import type { DirNode, Leaf, Node } from './nodes.js';
import type { UpperState } from './tree.js';

/**
 * Turns the bytes written since the last flush into stored chunks: zero
 * chunks become holes, the others are named by digest and returned as blobs.
 */
export function collectDirtyChunks(upper: UpperState, digest: (b: Uint8Array) => Digest): Map<Digest, Uint8Array> {
  const blobs = new Map<Digest, Uint8Array>();
  const seen = new Set<Leaf>();
  // Explicit stacks in both walks: a guest may nest directories deeper than the JS stack.
  const stack: DirNode[] = upper.root ? [upper.root] : [];
  for (let d = stack.pop(); d; d = stack.pop()) {
    for (const n of d.children.values()) {
      if (n.kind === 'dir') stack.push(n);
      else if (n.kind === 'file' && !seen.has(n)) {
        seen.add(n);
        for (const [k, c] of n.chunks) {
          if (!(c instanceof Uint8Array)) continue;
          if (isZero(c)) n.chunks.delete(k);
          else {
            const id = digest(c);
            blobs.set(id, c);
            n.chunks.set(k, id);
          }
        }
      }
    }
  }
  return blobs;
}

/**
 * The upper as a sorted table: the box's persisted state (`kind: 'upper'`,
 * with inode numbers and all times) or a layer for commit (`kind: 'layer'`,
 * normalised: only what a layer keeps, so equal changes give equal bytes).
 * Chunks must have been collected first.
 */
export function upperToTable(upper: UpperState, kind: 'upper' | 'layer', chunkSize: number, rootFallback: DirNode): LayerTable {
  const rows: { path: string; node: Node }[] = [];
  const root = upper.root ?? rootFallback;
  rows.push({ path: '', node: root });
  const stack: Array<[DirNode, string]> = upper.root ? [[upper.root, '']] : [];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [d, path] = top;
    for (const [name, n] of d.children) {
      const p = joinPath(path, name);
      rows.push({ path: p, node: n });
      if (n.kind === 'dir') stack.push([n, p]);
    }
  }
  rows.sort((a, b) => comparePaths(a.path, b.path));
  const firstName = new Map<Leaf, string>();
  const entries: LayerEntry[] = rows.map(({ path, node }) => {
    if (node.kind === 'whiteout') return { path, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0n };
    const m = node.meta;
    const e: LayerEntry = { path, type: node.kind, mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime };
    if (kind === 'upper') {
      e.ino = node.ino;
      e.atime = m.atime;
      e.ctime = m.ctime;
    }
    if (node.kind === 'dir') {
      if (node.opaque) e.opaque = true;
      if (node.redirect !== null) e.redirect = node.redirect;
      return e;
    }
    const first = firstName.get(node);
    if (first !== undefined) return { path, type: 'hardlink', mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, target: first, ...(kind === 'upper' ? { ino: node.ino, atime: m.atime, ctime: m.ctime } : {}) };
    firstName.set(node, path);
    if (node.kind === 'symlink') e.target = node.target;
    else {
      e.size = node.size;
      const chunks = new Map<number, Digest>();
      for (const [k, c] of node.chunks) {
        if (c instanceof Uint8Array) throw new Error('internal: dirty chunk left in a snapshot');
        chunks.set(k, c);
      }
      e.chunks = chunks;
    }
    return e;
  });
  return { kind, chunkSize, entries, nextIno: kind === 'upper' ? upper.nextIno : undefined };
}
