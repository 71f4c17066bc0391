import { type LayerEntry, type LayerTable, comparePaths } from '../layer.js';
import { joinPath } from '../path.js';
import type { Leaf, Meta } from './nodes.js';
import type { Overlay } from './overlay.js';

/** The merged view as one self-contained layer (no whiteouts, opaque dirs or redirects). Hard links stay links. */
export function squashTable(ov: Overlay, chunkSize: number): LayerTable {
  const entries: LayerEntry[] = [];
  const first = new Map<Leaf, string>();
  const row = (path: string, type: LayerEntry['type'], m: Meta): LayerEntry => ({ path, type, mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime });
  const walk = (path: string): void => {
    for (const e of ov.readdir('/' + path)) {
      const p = joinPath(path, e.name);
      const m = ov.mergedLookup(p)!;
      if (m.dir) {
        entries.push(row(p, 'dir', m.dir.meta));
        walk(p);
        continue;
      }
      const leaf = m.leaf!;
      const f = first.get(leaf);
      if (f !== undefined) entries.push({ ...row(p, 'hardlink', leaf.meta), target: f });
      else if (leaf.kind === 'symlink') entries.push({ ...row(p, 'symlink', leaf.meta), target: leaf.target });
      else {
        if ([...leaf.chunks.values()].some((c) => c instanceof Uint8Array)) throw new Error('internal: squash of unflushed content');
        entries.push({ ...row(p, 'file', leaf.meta), size: leaf.size, chunks: leaf.chunks as NonNullable<LayerEntry['chunks']> });
      }
      first.set(leaf, p);
    }
  };
  entries.push(row('', 'dir', ov.mergedLookup('')!.dir!.meta));
  walk('');
  entries.sort((a, b) => comparePaths(a.path, b.path));
  return { kind: 'layer', chunkSize, entries };
}
