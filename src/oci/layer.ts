import { LayerboxError } from '../errno.js';
import { type MDir, Overlay, type OverlayOptions } from '../overlay/overlay.js';
import type { DirNode, Leaf, Meta } from '../overlay/nodes.js';
import type { LowerLayer } from '../overlay/tree.js';
import { joinPath } from '../path.js';
import type { TarEntry } from '../tar.js';

/** The OCI marker that makes its directory opaque. */
export const OPAQUE_MARKER = '.wh..wh..opq';
/** The OCI prefix of whiteout names. */
export const WHITEOUT_PREFIX = '.wh.';

/** Entry metadata; a sub-second (or negative) mtime is kept exactly (a pax `mtime` record). */
function tarMeta(m: Meta): Pick<TarEntry, 'mode' | 'uid' | 'gid' | 'mtime' | 'mtimeNs'> {
  const s = m.mtime / 1_000_000_000n;
  if (m.mtime % 1_000_000_000n === 0n && m.mtime >= 0n) return { mode: m.mode, uid: m.uid, gid: m.gid, mtime: Number(s) };
  return { mode: m.mode, uid: m.uid, gid: m.gid, mtime: Number(m.mtime < 0n ? s - 1n : s), mtimeNs: m.mtime };
}

/** Metadata of the marker entries (whiteouts, opaque markers): fixed, so layer tars stay deterministic. */
const MARKER = { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, data: new Uint8Array() } as const;

/**
 * Layer `index` of a stack as the members of an OCI layer tar, in a fixed
 * order: each directory, then its opaque marker, then its whiteouts
 * (`.wh.<name>`), then its other children by name, depth first. Metadata is
 * as stored (mtimes to the nanosecond: pax `mtime` records when not whole seconds). Hard links are tar hard links to the
 * first name written. A directory with a redirect (renamed across layers)
 * cannot be said in OCI terms: it is written as an opaque directory holding
 * its whole merged subtree at this layer. A guest name starting with `.wh.`
 * cannot be said either and is refused.
 */
export function layerTarEntries(lowers: readonly LowerLayer[], index: number, opts: OverlayOptions, what = `layer ${index + 1}`): TarEntry[] {
  const layer = lowers[index];
  if (!layer) throw new LayerboxError(`${what}: no such layer`, { code: 'NOT_FOUND' });
  const ov = new Overlay(lowers.slice(0, index + 1), undefined, opts);
  const out: TarEntry[] = [];
  const first = new Map<Leaf, string>();
  const check = (path: string): void => {
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (name.startsWith(WHITEOUT_PREFIX))
      throw new LayerboxError(`cannot export ${what} as OCI: /${path} has a name starting with ".wh.", which OCI layers reserve for whiteouts; rename it first`, { code: 'INVALID' });
  };
  const leaf = (path: string, l: Leaf): void => {
    const m = tarMeta(l.meta);
    const f = first.get(l);
    if (f !== undefined) out.push({ path, type: 'hardlink', ...m, linkname: f });
    else if (l.kind === 'symlink') out.push({ path, type: 'symlink', ...m, linkname: l.target });
    // Content is read as the tar is written, piece by piece: a file may be far bigger than memory.
    else out.push({ path, type: 'file', ...m, size: l.size, body: () => ov.content.pieces(l) });
    if (f === undefined) first.set(l, path);
  };
  // Depth first on an explicit stack of work, in the order a recursive walk
  // would write (a guest may nest directories deeper than the JS stack):
  // `own` lists this layer's entries under a node, `merged` a merged subtree
  // as the overlay over this layer and the ones below sees it.
  type Work =
    | { t: 'own'; node: DirNode; dir: string }
    | { t: 'ownChild'; node: Leaf | DirNode; path: string }
    | { t: 'merged'; view: MDir }
    | { t: 'mergedChild'; path: string; dir?: MDir; leaf?: Leaf };
  const viewAt = (path: string): MDir => {
    let d = ov.viewRoot();
    for (const c of path.split('/')) {
      const f = ov.viewChild(d, c);
      if (!f?.dir) throw new LayerboxError(`${what}: /${path} is not a directory of the merged view`, { code: 'CORRUPT' });
      d = f.dir;
    }
    return d;
  };
  const stack: Work[] = [];
  out.push({ path: '.', type: 'dir', ...tarMeta(layer.root.meta) });
  if (layer.root.opaque) out.push({ ...MARKER, path: OPAQUE_MARKER });
  stack.push({ t: 'own', node: layer.root, dir: '' });
  for (let w = stack.pop(); w; w = stack.pop()) {
    if (w.t === 'own') {
      const { node, dir } = w;
      const names = [...node.children.keys()].sort();
      for (const name of names) {
        if (node.children.get(name)!.kind !== 'whiteout') continue;
        const p = joinPath(dir, name);
        check(p);
        out.push({ ...MARKER, path: joinPath(dir, WHITEOUT_PREFIX + name) });
      }
      for (let i = names.length - 1; i >= 0; i--) {
        const child = node.children.get(names[i]!)!;
        if (child.kind !== 'whiteout') stack.push({ t: 'ownChild', node: child, path: joinPath(dir, names[i]!) });
      }
    } else if (w.t === 'ownChild') {
      const { node: child, path: p } = w;
      check(p);
      if (child.kind !== 'dir') {
        leaf(p, child);
        continue;
      }
      out.push({ path: p, type: 'dir', ...tarMeta(child.meta) });
      if (child.opaque) {
        out.push({ ...MARKER, path: joinPath(p, OPAQUE_MARKER) });
        stack.push({ t: 'own', node: child, dir: p });
      } else if (child.redirect !== null) {
        out.push({ ...MARKER, path: joinPath(p, OPAQUE_MARKER) });
        stack.push({ t: 'merged', view: viewAt(p) });
      } else stack.push({ t: 'own', node: child, dir: p });
    } else if (w.t === 'merged') {
      const kids = ov.viewEntries(w.view);
      for (let i = kids.length - 1; i >= 0; i--) stack.push({ t: 'mergedChild', ...kids[i]! });
    } else {
      check(w.path);
      if (w.dir) {
        out.push({ path: w.path, type: 'dir', ...tarMeta(w.dir.sources[0]!.meta) });
        stack.push({ t: 'merged', view: w.dir });
      } else leaf(w.path, w.leaf!);
    }
  }
  return out;
}
