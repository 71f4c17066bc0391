import { joinPath } from '../path.js';
import type { MDir, Overlay } from './overlay.js';
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
  // Explicit stacks throughout: a guest may nest directories deeper than the JS stack.
  const addAll = (from: MDir): void => {
    const stack = [from];
    for (let d = stack.pop(); d; d = stack.pop())
      for (const e of ov.viewEntries(d)) {
        out.push({ kind: 'A', path: e.path });
        if (e.dir) stack.push(e.dir);
      }
  };
  const stack: Array<{ view: MDir; upper: DirNode | undefined; fast: boolean }> = [{ view: ov.viewRoot(), upper: ov.upper.root ?? undefined, fast: true }];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const { view, upper, fast } = top;
    let names: Iterable<string>;
    if (fast) {
      if (!upper) continue;
      names = upper.children.keys();
    } else {
      const set = new Set(ov.viewEntries(view).map((e) => e.name));
      const low = ov.lowerLookup(view.path);
      for (const d of low?.dirs ?? []) for (const [n, c] of d.children) if (c.kind !== 'whiteout') set.add(n);
      names = set;
    }
    for (const name of names) {
      const p = joinPath(view.path, name);
      const m = ov.viewChild(view, name);
      const l = ov.lowerLookup(p);
      if (!m && !l) continue;
      if (m && !l) {
        out.push({ kind: 'A', path: p });
        if (m.dir) addAll(m.dir);
        continue;
      }
      if (!m) {
        out.push({ kind: 'D', path: p });
        continue;
      }
      if (!!m.dir !== !!l!.dirs) {
        out.push({ kind: 'C', path: p });
        if (m.dir) addAll(m.dir);
        continue;
      }
      if (m.leaf) {
        if (!sameLeaf(m.leaf, l!.leaf!)) out.push({ kind: 'C', path: p });
        continue;
      }
      const top = m.dir!.sources[0]!;
      const up = top.layer === UPPER ? top : undefined;
      const replaced = !!up && (up.opaque || up.redirect !== null);
      if (replaced || (up && !sameMeta(up.meta, l!.dirs![0]!.meta))) out.push({ kind: 'C', path: p });
      stack.push({ view: m.dir!, upper: up, fast: fast && !replaced });
    }
  }
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out.map((c) => ({ kind: c.kind, path: '/' + c.path }));
}
