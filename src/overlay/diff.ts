import { joinPath } from '../path.js';
import type { Overlay } from './overlay.js';
import { sameChunks } from './content.js';
import { type DirNode, type Leaf, type Meta, UPPER } from './nodes.js';

/** One line of `diff`: Added, Changed or Deleted, against the box's image. */
export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

function sameMeta(a: Meta, b: Meta): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtime === b.mtime;
}

function sameLeaf(a: Leaf, b: Leaf): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind || !sameMeta(a.meta, b.meta)) return false;
  if (a.kind === 'symlink') return a.target === (b as typeof a).target;
  const bf = b as typeof a;
  return a.size === bf.size && sameChunks(a.chunks, bf.chunks);
}

/**
 * Lists what the upper changed, like `docker diff`: added entries with all
 * their descendants, changed ones (content or metadata; a directory whose
 * entries changed has a new mtime), deleted ones (a deleted directory alone).
 * Work follows the upper, not the image, except under renamed or opaque
 * directories, whose whole merged subtree is compared.
 */
export function diffOverlay(ov: Overlay): Change[] {
  const out: Change[] = [];
  const addAll = (path: string): void => {
    for (const e of ov.readdir('/' + path)) {
      const p = joinPath(path, e.name);
      out.push({ kind: 'A', path: p });
      if (e.type === 'dir') addAll(p);
    }
  };
  const walk = (path: string, upper: DirNode | undefined, fast: boolean): void => {
    let names: Iterable<string>;
    if (fast) {
      if (!upper) return;
      names = upper.children.keys();
    } else {
      const set = new Set(ov.readdir('/' + path).map((e) => e.name));
      const low = ov.lowerLookup(path);
      for (const d of low?.dirs ?? []) for (const [n, c] of d.children) if (c.kind !== 'whiteout') set.add(n);
      names = set;
    }
    for (const name of names) {
      const p = joinPath(path, name);
      const m = ov.mergedLookup(p);
      const l = ov.lowerLookup(p);
      if (!m && !l) continue;
      if (m && !l) {
        out.push({ kind: 'A', path: p });
        if (m.dir) addAll(p);
        continue;
      }
      if (!m) {
        out.push({ kind: 'D', path: p });
        continue;
      }
      if (!!m.dir !== !!l!.dirs) {
        out.push({ kind: 'C', path: p });
        if (m.dir) addAll(p);
        continue;
      }
      if (m.leaf) {
        if (!sameLeaf(m.leaf, l!.leaf!)) out.push({ kind: 'C', path: p });
        continue;
      }
      const top = m.dir!;
      const up = top.layer === UPPER ? top : undefined;
      const replaced = !!up && (up.opaque || up.redirect !== null);
      if (replaced || (up && !sameMeta(up.meta, l!.dirs![0]!.meta))) out.push({ kind: 'C', path: p });
      walk(p, up, fast && !replaced);
    }
  };
  walk('', ov.upper.root ?? undefined, true);
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out.map((c) => ({ kind: c.kind, path: '/' + c.path }));
}
