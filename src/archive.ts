import type { LayerBuilder } from './builder.js';
import { LayerboxError } from './errno.js';
import type { Overlay } from './overlay/overlay.js';
import type { Leaf } from './overlay/nodes.js';
import { type TarEntry, readTar, readTarStream, writeTar } from './tar.js';

type TarMember = { entry: TarEntry; content?: Uint8Array | AsyncIterable<Uint8Array> };

/** The merged view as tar entries (hard links kept as links), sorted by path. */
export function treeEntries(ov: Overlay): TarEntry[] {
  const out: TarEntry[] = [];
  const first = new Map<Leaf, string>();
  // Pre-order by name on an explicit stack: a guest may nest directories deeper than the JS stack.
  const stack = ov.viewEntries(ov.viewRoot()).reverse();
  for (let e = stack.pop(); e; e = stack.pop()) {
    const p = e.path;
    const meta = (e.dir ? e.dir.sources[0]! : e.leaf!).meta;
    const base = { path: p, mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: Number(meta.mtime / 1_000_000_000n) };
    if (e.dir) {
      out.push({ ...base, type: 'dir' });
      const kids = ov.viewEntries(e.dir);
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
      continue;
    }
    const leaf = e.leaf!;
    const f = first.get(leaf);
    if (f !== undefined) out.push({ ...base, type: 'hardlink', linkname: f });
    else if (leaf.kind === 'symlink') out.push({ ...base, type: 'symlink', linkname: leaf.target });
    else out.push({ ...base, type: 'file', data: ov.content.read(leaf, 0, leaf.size) });
    first.set(leaf, p);
  }
  return out;
}

/** The merged view as a tar archive. */
export function exportTar(ov: Overlay): Uint8Array {
  return writeTar(treeEntries(ov));
}

/** Adds an uncompressed tar's members to a layer; OCI `.wh.` names become whiteouts and opaque markers. */
export async function addTarBytes(b: LayerBuilder, bytes: Uint8Array): Promise<void> {
  await addTarMembers(b, readTar(bytes).map((entry) => ({ entry, content: entry.data })));
}

/** The same from a tar streamed as pieces: file content goes to the layer as it arrives, so a member may be bigger than memory. */
export async function addTarStream(b: LayerBuilder, tar: AsyncIterable<Uint8Array>): Promise<void> {
  await addTarMembers(b, readTarStream(tar));
}

async function addTarMembers(b: LayerBuilder, members: Iterable<TarMember> | AsyncIterable<TarMember>): Promise<void> {
  /** Directories marked opaque, and the paths that had an entry of their own. */
  const opaque = new Set<string>();
  const seen = new Set<string>();
  for await (const { entry: e, content } of members) {
    if (e.path.startsWith('/')) throw new LayerboxError(`refusing absolute path in tar: ${JSON.stringify(e.path)}`, { code: 'CORRUPT' });
    const path = e.path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    const slash = path.lastIndexOf('/');
    const base = path.slice(slash + 1), dir = slash < 0 ? '' : path.slice(0, slash);
    const meta = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtimeNs ?? BigInt(e.mtime) * 1_000_000_000n };
    if (path === '' || path === '.') {
      if (e.type === 'dir') b.addDir('/', meta);
      continue;
    }
    if (base === '.wh..wh..opq') {
      // Applied at the end: the directory's own entry may come before or after its marker.
      if (opaque.has(dir)) throw new LayerboxError(`duplicate entry ${JSON.stringify(e.path)}`, { code: 'CORRUPT' });
      opaque.add(dir);
      continue;
    }
    if (base.startsWith('.wh..wh.')) continue; // other OCI/aufs metadata (hard-link dirs): nothing to keep
    if (base.startsWith('.wh.')) {
      if (base === '.wh.') throw new LayerboxError(`whiteout without a name in tar: ${JSON.stringify(e.path)}`, { code: 'CORRUPT' });
      b.addWhiteout(`${dir}/${base.slice(4)}`);
      continue;
    }
    if (e.type === 'file') await b.addFile(path, content ?? new Uint8Array(), meta);
    else if (e.type === 'dir') b.addDir(path, meta);
    else if (e.type === 'symlink') b.addSymlink(path, e.linkname!, meta);
    else b.addHardlink(path, e.linkname!.replace(/^(\.\/)+/, ''));
    seen.add(path);
  }
  for (const d of opaque) {
    if (d !== '' && !seen.has(d)) b.addDir(d);
    b.markOpaque(d || '/');
  }
}
