import { type LayerEntry, type LayerTable, comparePaths } from '../layer.js';
import type { Leaf, Meta } from './nodes.js';
import type { Overlay } from './overlay.js';

/** The merged view as one self-contained layer (no whiteouts, opaque dirs or redirects). Hard links stay links. */
export function squashTable(ov: Overlay, chunkSize: number): LayerTable {
  const entries: LayerEntry[] = [];
  const first = new Map<Leaf, string>();
  const row = (path: string, type: LayerEntry['type'], m: Meta): LayerEntry => ({ path, type, mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime });
  // Pre-order by name, as a recursive walk would go, on an explicit stack: a
  // guest may nest directories deeper than the JS stack.
  const root = ov.viewRoot();
  entries.push(row('', 'dir', root.sources[0]!.meta));
  const stack = ov.viewEntries(root).reverse();
  for (let e = stack.pop(); e; e = stack.pop()) {
    const p = e.path;
    if (e.dir) {
      entries.push(row(p, 'dir', e.dir.sources[0]!.meta));
      const kids = ov.viewEntries(e.dir);
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
      continue;
    }
    const leaf = e.leaf!;
    const f = first.get(leaf);
    if (f !== undefined) entries.push({ ...row(p, 'hardlink', leaf.meta), target: f });
    else if (leaf.kind === 'symlink') entries.push({ ...row(p, 'symlink', leaf.meta), target: leaf.target });
    else {
      if ([...leaf.chunks.values()].some((c) => c instanceof Uint8Array)) throw new Error('internal: squash of unflushed content');
      entries.push({ ...row(p, 'file', leaf.meta), size: leaf.size, chunks: leaf.chunks as NonNullable<LayerEntry['chunks']> });
    }
    first.set(leaf, p);
  }
  entries.sort((a, b) => comparePaths(a.path, b.path));
  return { kind: 'layer', chunkSize, entries };
}
