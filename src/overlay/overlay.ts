import type { Digest } from '../digest.js';
import { fsError } from '../errno.js';
import { NAME_MAX, PATH_MAX, checkName, joinPath, parentOf } from '../path.js';
import { DEFAULT_MAX_FILE_BYTES, FileContent } from './content.js';
import { utf8, utf8Length } from '../text.js';
import { type Chunk, type DirNode, type FileNode, type Leaf, type Meta, type Node, type SymlinkNode, UPPER, UPPER_INO_BASE, WHITEOUT, newDir } from './nodes.js';
import { type LowerLayer, type UpperState, emptyUpper } from './tree.js';

/** What the engine needs from its host: chunk reads (synchronous) and a clock. */
export interface OverlayOptions {
  chunkSize: number;
  readChunk: (digest: Digest) => Uint8Array;
  /**
   * Optional: copies a run of consecutive stored chunks (of the given
   * lengths), from byte `from` of the first, straight into `dest` (guest
   * memory on the read path); false when it cannot (then `readChunk` is used,
   * chunk by chunk).
   */
  readChunksInto?: (run: Digest[], lengths: number[], dest: Uint8Array, from: number) => boolean;
  /** Nanoseconds since the epoch. */
  clock: () => bigint;
  /** Quotas on what the upper may hold (a box's `limits`); none when absent. */
  limits?: BoxLimits;
  /** Where changes go when they leave memory: a box's journal. Without one, the upper lives in memory only. */
  journal?: OverlayJournal;
}

/**
 * The engine's view of a box journal (see store/journal.ts): it is told
 * before bytes are written (so it can move dirty chunks out of memory first)
 * and asked to make every change durable on sync. Both may throw FsError
 * (ENOSPC, EIO...), and then nothing changed.
 */
export interface OverlayJournal {
  beforeWrite(ov: Overlay, bytes: number): void;
  sync(ov: Overlay): void;
}

/**
 * What changed in the upper since the last sync: the nodes whose own
 * attributes changed, the names that changed in upper directories, and the
 * chunk indices of files that changed. A journal writes exactly these, so a
 * sync costs what changed, not the size of the upper.
 */
export class UpperChanges {
  readonly nodes = new Set<DirNode | Leaf>();
  readonly edges = new Map<DirNode, Set<string>>();
  readonly keys = new Map<FileNode, Set<number>>();
  /** Bytes of chunk buffers created since the last sync or spill (an estimate: the journal recounts before acting on it). */
  dirtyBytes = 0;
  node(n: Node): void {
    if (n.kind !== 'whiteout') this.nodes.add(n);
  }
  edge(d: DirNode, name: string): void {
    let s = this.edges.get(d);
    if (!s) this.edges.set(d, (s = new Set()));
    s.add(name);
  }
  chunk(f: FileNode, k: number, bytes: number): void {
    let s = this.keys.get(f);
    if (!s) this.keys.set(f, (s = new Set()));
    s.add(k);
    this.dirtyBytes += bytes;
    this.nodes.add(f);
  }
  get empty(): boolean {
    return !this.nodes.size && !this.edges.size && !this.keys.size;
  }
  clear(): void {
    this.nodes.clear();
    this.edges.clear();
    this.keys.clear();
    this.dirtyBytes = 0;
  }
}

/**
 * Per-box quotas, enforced by the overlay before any change.
 * `maxUpperBytes`: bytes of file content in the upper that differ from the
 * image, counted by chunk (a chunk still equal to the image's chunk at the same
 * index costs nothing; any other chunk, holes included, costs its length).
 * `maxFiles`: entries the upper adds (files, directories, symlinks and extra
 * hard links it created; copy-ups and renames add none).
 * Over `maxUpperBytes` a change fails with ENOSPC, over `maxFiles` with EDQUOT.
 */
export interface BoxLimits {
  maxUpperBytes?: number;
  maxFiles?: number;
  /** Largest size of one file (default DEFAULT_MAX_FILE_BYTES, 1 TiB): a write or truncate past it fails with EFBIG. */
  maxFileBytes?: number;
}

/** What the upper holds, as counted against BoxLimits. */
export interface UpperUsage {
  upperBytes: number;
  files: number;
}

export type FileType = 'file' | 'dir' | 'symlink';

export interface Stat {
  ino: number;
  type: FileType;
  /** Permission bits (0o7777). */
  mode: number;
  nlink: number;
  size: number;
  uid: number;
  gid: number;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
}

export interface DirEntry {
  name: string;
  type: FileType;
  ino: number;
}

export interface OpenOptions {
  create?: boolean;
  exclusive?: boolean;
  truncate?: boolean;
  /** Follow a symlink in the last component (default true). */
  follow?: boolean;
  mode?: number;
}

/** A merged directory as seen while walking: its sources top-down (an upper node first if it has one). */
/** A directory of the merged view: its sources top-down (upper first, if any). */
export interface MDir {
  sources: DirNode[];
  parent: MDir | null;
  name: string;
  /** Stored path in the merged view. */
  path: string;
  /** Path of this directory in the namespace of the topmost lower layer. */
  lowerPath: string;
}

type Found = { dir: MDir; leaf?: undefined } | { leaf: Leaf; dir?: undefined };

interface Resolved {
  /** Null only for the root itself. */
  parent: MDir | null;
  name: string;
  path: string;
  found: Found | null;
}

/** Lookup result inside one list of sources. */
type Hit = { dirs: DirNode[]; leaf?: undefined } | { leaf: Leaf; dirs?: undefined } | null;

const MAX_SYMLINKS = 40;

/**
 * The merged copy-on-write view of lower layers under one writable upper.
 * Synchronous and pure: storage reaches it only through `readChunk`; the
 * upper lives in memory until the box flushes it.
 */
export class Overlay {
  readonly upper: UpperState;
  readonly content: FileContent;
  /** Changes since the last sync (see UpperChanges). */
  readonly changes = new UpperChanges();
  /** Lower leaves that were copied up, by inode: every later lookup of them lands on the copy. */
  private copies = new Map<number, Leaf>();
  private redirectCache = new Map<string, DirNode[]>();
  private nlinkCache = new WeakMap<DirNode, { version: number; nlink: number }>();
  /** Bumped on every change of names (see GuestFs.version). */
  version = 0;
  /** Counters checked against `opts.limits`, kept up to date by every change (recount() rebuilds them). */
  private used: UpperUsage = { upperBytes: 0, files: 0 };
  /** Lower leaves by inode, built on first need: the image version of a copied-up leaf. */
  private lowerIndex: Map<number, Leaf> | null = null;

  constructor(readonly lowers: readonly LowerLayer[], upper: UpperState = emptyUpper(), readonly opts: OverlayOptions) {
    this.upper = upper;
    this.content = new FileContent(opts.chunkSize, opts.readChunk, opts.readChunksInto, (f, k, bytes) => this.changes.chunk(f, k, bytes));
    if (upper.nextIno < UPPER_INO_BASE) upper.nextIno = UPPER_INO_BASE;
    if (upper.root) this.indexCopies(upper.root);
    else if (!lowers.length) {
      const t = opts.clock();
      upper.root = newDir(UPPER, upper.nextIno++, { mode: 0o755, uid: 0, gid: 0, atime: t, mtime: t, ctime: t }, null, '');
      this.changes.node(upper.root);
    }
    this.recount();
  }

  /** Makes every change so far durable through the journal (a no-op without one). Throws FsError on failure, changing nothing. */
  sync(): void {
    this.opts.journal?.sync(this);
  }

  /**
   * Bytes of content the upper holds for `f` beyond the image's (what
   * maxUpperBytes counts). A journal calls it around turning a file's
   * written chunks into digests, with `adjust` the difference to book.
   */
  fileUsage(f: FileNode): number {
    return f.nlink > 0 ? this.fileBytes(f) : 0;
  }

  /** Books a change of upper bytes the engine did not make itself (see fileUsage). */
  adjustUsage(bytes: number): void {
    this.used.upperBytes += bytes;
  }

  // ---- quotas -------------------------------------------------------------------

  /** What the upper holds now, as counted against the limits. */
  get usage(): UpperUsage {
    return { ...this.used };
  }

  get limits(): BoxLimits {
    return this.opts.limits ?? {};
  }

  /**
   * Rebuilds the usage counters from the upper tree: O(upper). Run on mount
   * and after a flush (which turns written chunks into digests that may equal
   * the image's again).
   */
  recount(): void {
    let upperBytes = 0, files = 0;
    const seen = new Set<Leaf>();
    // An explicit stack: a guest may nest directories deeper than the JS stack.
    const stack: Array<[DirNode, string]> = this.upper.root ? [[this.upper.root, '']] : [];
    for (let top = stack.pop(); top; top = stack.pop()) {
      const [d, path] = top;
      for (const [name, n] of d.children) {
        if (n.kind === 'whiteout') continue;
        if (n.kind === 'dir') {
          if (n.ino >= UPPER_INO_BASE) files++;
          stack.push([n, joinPath(path, name)]);
        } else if (!seen.has(n)) {
          seen.add(n);
          this.guessBase(n, joinPath(path, name));
          files += this.leafFiles(n, n.nlink);
          if (n.kind === 'file' && n.nlink > 0) upperBytes += this.fileBytes(n);
        }
      }
    }
    this.used = { upperBytes, files };
  }

  /**
   * The image's version of a leaf (itself for a lower leaf, null for one the
   * upper created). Copies know it from their copy-up, or from `recount` on
   * mount (by the path they have); only a copy found nowhere else makes the
   * lower layers be walked, once.
   */
  private baseOf(l: Leaf): Leaf | null {
    if (l.layer !== UPPER) return l;
    if (l.ino >= UPPER_INO_BASE) return null;
    if (l.base !== undefined) return l.base;
    if (!this.lowerIndex) {
      const index = new Map<number, Leaf>();
      const stack = this.lowers.map((l) => l.root);
      for (let d = stack.pop(); d; d = stack.pop())
        for (const n of d.children.values()) {
          if (n.kind === 'dir') stack.push(n);
          else if (n.kind !== 'whiteout') index.set(n.ino, n);
        }
      this.lowerIndex = index;
    }
    return (l.base = this.lowerIndex.get(l.ino) ?? null);
  }

  /** Finds the image's version of an upper copy through the path it has now (usually its old one). */
  private guessBase(l: Leaf, path: string): void {
    if (l.layer !== UPPER || l.ino >= UPPER_INO_BASE || l.base !== undefined) return;
    let hit: Hit = null;
    try {
      hit = this.lowerLookup(path);
    } catch {
      return;
    }
    if (hit?.leaf && hit.leaf.ino === l.ino) l.base = hit.leaf;
  }

  /** Entries a leaf with `nlink` names adds over the image: its names, less the image's own for a copied-up leaf. */
  private leafFiles(l: Leaf, nlink: number): number {
    if (l.layer === UPPER && l.ino >= UPPER_INO_BASE) return Math.max(0, nlink);
    return Math.max(0, nlink - (this.baseOf(l)?.nlink ?? 0));
  }

  private covered(size: number, k: number): number {
    return Math.max(0, Math.min(this.content.chunkSize, size - k * this.content.chunkSize));
  }

  /** Cost of chunk k holding `c` in a file of `size` bytes: nothing while it is the image's chunk k. */
  private chunkCost(c: Chunk | undefined | 'own', k: number, size: number, base: FileNode | null): number {
    const len = this.covered(size, k);
    if (c === 'own' || c instanceof Uint8Array || !base) return len;
    return base.chunks.get(k) === c && this.covered(base.size, k) === len ? 0 : len;
  }

  private fileBase(f: FileNode): FileNode | null {
    const b = this.baseOf(f);
    return b?.kind === 'file' ? b : null;
  }

  /**
   * Sum of g(k) for k in [lo, hi] in O(chunks present), not O(size): g may
   * change only at the given breakpoints and at chunks present in `maps`;
   * between them it is constant (holes everywhere, sizes on the same side),
   * so each such stretch costs one call.
   */
  private sumChunks(lo: number, hi: number, maps: ReadonlyMap<number, unknown>[], cuts: number[], g: (k: number) => number): number {
    if (hi < lo) return 0;
    let total = 0;
    // A short range (a write's few chunks) is summed chunk by chunk: O(range), whatever the file holds.
    if (hi - lo < 64 + maps.reduce((n, m) => n + m.size, 0)) {
      for (let k = lo; k <= hi; k++) total += g(k);
      return total;
    }
    const points = new Set<number>([lo, hi + 1]);
    const add = (k: number) => {
      if (k > lo && k <= hi) points.add(k);
    };
    for (const k of cuts) add(k);
    for (const m of maps) for (const k of m.keys()) {
      add(k);
      add(k + 1);
    }
    const ps = [...points].sort((a, b) => a - b);
    for (let i = 0; i + 1 < ps.length; i++) total += g(ps[i]!) * (ps[i + 1]! - ps[i]!);
    return total;
  }

  /** Where chunk coverage changes for a file of `size` bytes: the last partial chunk and the end. */
  private sizeCuts(size: number): number[] {
    const cs = this.content.chunkSize;
    return [Math.floor(size / cs), Math.floor(size / cs) + 1];
  }

  private fileBytes(f: FileNode): number {
    const base = this.fileBase(f);
    const n = Math.ceil(f.size / this.content.chunkSize);
    const maps = base ? [f.chunks, base.chunks] : [f.chunks];
    const cuts = [...this.sizeCuts(f.size), ...(base ? this.sizeCuts(base.size) : [])];
    return this.sumChunks(0, n - 1, maps, cuts, (k) => this.chunkCost(f.chunks.get(k), k, f.size, base));
  }

  /** Throws EFBIG, changing nothing, when a file would grow past the largest size a box allows. */
  private checkFileSize(size: number): void {
    const max = this.limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    if (size > max) throw fsError('FBIG', `a file of ${size} bytes would pass the largest file size of ${max}`);
  }

  /**
   * The change in upper bytes if `leaf` goes to `newSize` with bytes
   * [wFrom, wTo) written, mirroring FileContent (written and resized chunks
   * become owned bytes, new chunks holes). Looks only at the chunks the change
   * touches, holes in stretches at a time. Throws ENOSPC, changing nothing,
   * when it would pass the limit.
   */
  private reserveBytes(leaf: Leaf, newSize: number, wFrom: number, wTo: number): number {
    if (leaf.kind !== 'file' || (leaf.layer === UPPER && leaf.nlink <= 0)) return 0;
    const cs = this.content.chunkSize, old = leaf.size;
    if (newSize === old && wTo > wFrom && leaf.layer === UPPER) {
      // The common case (a database rewriting its pages): chunks the file already owns, same size: no change in cost.
      let owned = true;
      for (let k = Math.floor(wFrom / cs), last = Math.floor((wTo - 1) / cs); k <= last && owned; k++) owned = leaf.chunks.get(k) instanceof Uint8Array;
      if (owned) return 0;
    }
    const base = this.fileBase(leaf);
    const oldN = Math.ceil(old / cs), newN = Math.ceil(newSize / cs);
    let lo = Infinity, hi = -1;
    const wf = Math.floor(wFrom / cs), wl = Math.floor((wTo - 1) / cs);
    if (wTo > wFrom) [lo, hi] = [wf, wl];
    if (newSize > old) [lo, hi] = [Math.min(lo, old % cs ? oldN - 1 : oldN), Math.max(hi, newN - 1)];
    else if (newSize < old) [lo, hi] = [Math.min(lo, newSize % cs ? newN - 1 : newN), Math.max(hi, oldN - 1)];
    const cuts = [...this.sizeCuts(old), ...this.sizeCuts(newSize), ...(base ? this.sizeCuts(base.size) : []), oldN, newN];
    if (wTo > wFrom) cuts.push(wf, wl + 1);
    const delta = this.sumChunks(lo, hi, base ? [leaf.chunks, base.chunks] : [leaf.chunks], cuts, (k) => {
      const before = k < oldN ? this.chunkCost(leaf.chunks.get(k), k, old, base) : 0;
      let after = 0;
      if (k >= newN) after = 0;
      else if (wTo > wFrom && k >= wf && k <= wl) after = this.covered(newSize, k);
      else if (k < oldN) {
        const c = leaf.chunks.get(k);
        after = this.chunkCost(c !== undefined && this.covered(old, k) !== this.covered(newSize, k) ? 'own' : c, k, newSize, base);
      } else after = this.chunkCost(undefined, k, newSize, base);
      return after - before;
    });
    const max = this.limits.maxUpperBytes;
    if (delta > 0 && max !== undefined && this.used.upperBytes + delta > max) throw fsError('NOSPC', `box quota: ${this.used.upperBytes + delta} bytes in the upper would pass the limit of ${max}`);
    return delta;
  }

  /** Throws EDQUOT, changing nothing, when `n` more entries would pass the limit. */
  private reserveFiles(n: number): void {
    const max = this.limits.maxFiles;
    if (max !== undefined && this.used.files + n > max) throw fsError('DQUOT', `box quota: ${this.used.files + n} entries in the upper would pass the limit of ${max}`);
  }

  private indexCopies(root: DirNode): void {
    const stack = [root];
    for (let d = stack.pop(); d; d = stack.pop())
      for (const n of d.children.values()) {
        if (n.kind === 'dir') stack.push(n);
        else if (n.kind !== 'whiteout' && n.ino < UPPER_INO_BASE) this.copies.set(n.ino, n);
      }
  }

  // ---- lookup -------------------------------------------------------------

  private lowerRoots(below: number): DirNode[] {
    const out: DirNode[] = [];
    for (let i = Math.min(below, this.lowers.length) - 1; i >= 0; i--) {
      const r = this.lowers[i]!.root;
      out.push(r);
      if (r.opaque) break;
    }
    return out;
  }

  /** Looks `name` up in a list of directory sources, top-down: whiteouts hide, opaque dirs and redirects stop the union. */
  private childIn(sources: readonly DirNode[], name: string, mapCopies: boolean): Hit {
    let dirs: DirNode[] | null = null;
    for (const src of sources) {
      const e = src.children.get(name);
      if (!e) continue;
      if (e.kind === 'whiteout') break;
      if (e.kind !== 'dir') {
        if (dirs) break;
        const leaf = mapCopies && e.layer !== UPPER ? this.copies.get(e.ino) ?? e : e;
        return { leaf };
      }
      (dirs ??= []).push(e);
      if (e.opaque) break;
      if (e.redirect !== null) {
        dirs.push(...this.redirectSources(e.layer, e.redirect));
        break;
      }
    }
    return dirs ? { dirs } : null;
  }

  /** Sources of directory `path` in the layers below `layer` (lower layers never change, so this is cached). */
  private redirectSources(layer: number, path: string): DirNode[] {
    const key = `${layer}\0${path}`;
    let s = this.redirectCache.get(key);
    if (!s) {
      s = this.lowerRoots(layer);
      for (const c of path.split('/')) {
        const hit = this.childIn(s, c, false);
        s = hit?.dirs ?? [];
        if (!s.length) break;
      }
      this.redirectCache.set(key, s);
    }
    return s;
  }

  private rootDir(): MDir {
    const sources = this.lowerRoots(this.lowers.length);
    if (this.upper.root) sources.unshift(this.upper.root);
    if (this.upper.root?.opaque) sources.length = 1;
    return { sources, parent: null, name: '', path: '', lowerPath: '' };
  }

  private childDir(parent: MDir, name: string, dirs: DirNode[]): MDir {
    const top = dirs[0]!;
    const lowerPath = top.layer === UPPER && top.redirect !== null ? top.redirect : joinPath(parent.lowerPath, name);
    return { sources: dirs, parent, name, path: joinPath(parent.path, name), lowerPath };
  }

  private lookup(dir: MDir, name: string): Found | null {
    const hit = this.childIn(dir.sources, name, true);
    if (!hit) return null;
    return hit.leaf ? { leaf: hit.leaf } : { dir: this.childDir(dir, name, hit.dirs) };
  }

  /**
   * Resolves a guest path inside the root: absolute symlink targets mean the
   * root, `..` stops at the root, more than 40 symlinks give ELOOP.
   */
  private resolve(path: string, follow: boolean): Resolved {
    if (path.includes('\0')) throw fsError('INVAL', `path contains a NUL byte`);
    if (path.length > PATH_MAX) throw fsError('NAMETOOLONG', `path longer than ${PATH_MAX}`);
    const root = this.rootDir();
    let cur = root;
    let rest = path.split('/').reverse();
    let mustBeDir = path.endsWith('/');
    let links = 0;
    const expand = (target: string, from: MDir): MDir => {
      if (++links > MAX_SYMLINKS) throw fsError('LOOP', `too many symbolic links in ${path}`);
      if (target === '') throw fsError('NOENT', `empty symlink target in ${path}`);
      rest.push(...target.split('/').reverse());
      if (target.endsWith('/')) mustBeDir = true;
      return target.startsWith('/') ? root : from;
    };
    for (;;) {
      while (rest.length && (rest[rest.length - 1] === '' || rest[rest.length - 1] === '.')) rest.pop();
      const c = rest.pop();
      if (c === undefined) return { parent: cur.parent, name: cur.name, path: cur.path, found: { dir: cur } };
      if (c === '..') {
        cur = cur.parent ?? cur;
        continue;
      }
      if (c.length * 3 > NAME_MAX && utf8Length(c) > NAME_MAX) throw fsError('NAMETOOLONG', `name longer than ${NAME_MAX} bytes: ${c.slice(0, 40)}...`);
      while (rest.length && (rest[rest.length - 1] === '' || rest[rest.length - 1] === '.')) rest.pop();
      const last = rest.length === 0;
      const f = this.lookup(cur, c);
      if (!last) {
        if (!f) throw fsError('NOENT', `no such file or directory: /${joinPath(cur.path, c)}`);
        if (f.dir) cur = f.dir;
        else if (f.leaf.kind === 'symlink') cur = expand(f.leaf.target, cur);
        else throw fsError('NOTDIR', `not a directory: /${joinPath(cur.path, c)}`);
        continue;
      }
      if (f?.leaf?.kind === 'symlink' && (follow || mustBeDir)) {
        cur = expand(f.leaf.target, cur);
        continue;
      }
      if (mustBeDir && f?.leaf) throw fsError('NOTDIR', `not a directory: /${joinPath(cur.path, c)}`);
      return { parent: cur, name: c, path: joinPath(cur.path, c), found: f };
    }
  }

  private existing(path: string, follow: boolean): Resolved & { found: Found } {
    const r = this.resolve(path, follow);
    if (!r.found) throw fsError('NOENT', `no such file or directory: /${r.path}`);
    return r as Resolved & { found: Found };
  }

  /** Whether the lower layers (under the parent's upper node) hold something at `name`. */
  private lowerHas(parent: MDir, name: string): boolean {
    const lower = parent.sources[0]?.layer === UPPER ? parent.sources.slice(1) : parent.sources;
    return this.childIn(lower, name, false) !== null;
  }

  // ---- copy-up --------------------------------------------------------------

  private now(): bigint {
    return this.opts.clock();
  }

  /** The directory's upper node, creating it (and its ancestors') with the lower metadata: a metadata-only copy-up. */
  private upperDir(dir: MDir): DirNode {
    // The ancestors without an upper node, then top-down (no recursion: a
    // directory may be deeper than the JS stack).
    const chain: MDir[] = [];
    let p: DirNode | null = null;
    for (let d: MDir | null = dir; d; d = d.parent) {
      const top = d.sources[0];
      if (top?.layer === UPPER) {
        p = top;
        break;
      }
      chain.push(d);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const d = chain[i]!;
      const top = d.sources[0]!;
      let node: DirNode;
      if (!d.parent) {
        if (!this.upper.root) this.changes.node((this.upper.root = newDir(UPPER, top.ino, { ...top.meta }, null, '')));
        node = this.upper.root;
      } else {
        const existing = p!.children.get(d.name);
        if (existing?.kind === 'dir') node = existing;
        else {
          node = newDir(UPPER, top.ino, { ...top.meta }, p!, d.name);
          p!.children.set(d.name, node);
          this.changes.node(node);
          this.changes.edge(p!, d.name);
        }
      }
      d.sources.unshift(node);
      p = node;
    }
    return p!;
  }

  private pathOfUpper(d: DirNode): string | null {
    const names: string[] = [];
    for (let n: DirNode | null = d; n !== this.upper.root; n = n.parent) {
      if (!n || !n.parent) return null;
      names.push(n.name);
    }
    return names.reverse().join('/');
  }

  /** Maps a path of lower layer `layer` to the merged view through the redirects of the layers above it. */
  private toMerged(layer: number, path: string): string | null {
    const apply = (p: string, find: (origin: string) => string | null | undefined): string | null => {
      const comps = p.split('/');
      for (let k = comps.length; k > 0; k--) {
        const to = find(comps.slice(0, k).join('/'));
        if (to !== undefined) return to === null ? null : [to, ...comps.slice(k)].filter((s) => s !== '').join('/');
      }
      return p;
    };
    let p: string | null = path;
    for (let j = layer + 1; j < this.lowers.length && p !== null; j++) p = apply(p, (o) => this.lowers[j]!.redirects.get(o));
    if (p === null) return null;
    return apply(p, (o) => {
      const d = this.upper.redirects.get(o);
      return d ? this.pathOfUpper(d) : undefined;
    });
  }

  /**
   * Copies a lower leaf up, metadata only: the copy shares the lower chunks.
   * A hard-link group is copied together: every merged name of the lower
   * inode gets the copy, so the group keeps its identity.
   */
  private copyUp(leaf: Leaf): Leaf {
    if (leaf.layer === UPPER) return leaf;
    const done = this.copies.get(leaf.ino);
    if (done) return done;
    const copy = cloneLeaf(leaf);
    copy.base = leaf;
    for (const p of leaf.paths) {
      const m = this.toMerged(leaf.layer, p);
      if (m === null || m === '') continue;
      let r: Resolved;
      try {
        r = this.resolve(m, false);
      } catch {
        continue;
      }
      if (r.found?.leaf !== leaf || !r.parent) continue;
      const up = this.upperDir(r.parent);
      up.children.set(r.name, copy);
      this.changes.edge(up, r.name);
      copy.nlink++;
    }
    this.changes.node(copy);
    this.copies.set(leaf.ino, copy);
    return copy;
  }

  private writableFile(leaf: Leaf): FileNode {
    const u = this.copyUp(leaf);
    if (u.kind !== 'file') throw fsError('INVAL', 'not a regular file');
    return u;
  }

  // ---- reading ----------------------------------------------------------------

  private statOf(f: Found): Stat {
    if (f.leaf) {
      const l = f.leaf;
      const size = l.kind === 'file' ? l.size : utf8Length(l.target);
      return { ino: l.ino, type: l.kind, mode: l.meta.mode, nlink: l.nlink, size, uid: l.meta.uid, gid: l.meta.gid, atime: l.meta.atime, mtime: l.meta.mtime, ctime: l.meta.ctime };
    }
    const d = f.dir.sources[0]!;
    // nlink counts subdirectories: cached until names change, so stat in a big directory stays cheap.
    let n = this.nlinkCache.get(d);
    if (!n || n.version !== this.version) {
      let subdirs = 0;
      for (const e of this.list(f.dir)) if (e.type === 'dir') subdirs++;
      this.nlinkCache.set(d, (n = { version: this.version, nlink: 2 + subdirs }));
    }
    return { ino: d.ino, type: 'dir', mode: d.meta.mode, nlink: n.nlink, size: 4096, uid: d.meta.uid, gid: d.meta.gid, atime: d.meta.atime, mtime: d.meta.mtime, ctime: d.meta.ctime };
  }

  stat(path: string, follow = true): Stat {
    return this.statOf(this.existing(path, follow).found);
  }

  /** Like stat, but null when the path does not exist (no exception on the common miss). */
  tryStat(path: string, follow = true): Stat | null {
    const r = this.resolve(path, follow);
    return r.found ? this.statOf(r.found) : null;
  }

  lstat(path: string): Stat {
    return this.stat(path, false);
  }

  exists(path: string, follow = true): boolean {
    try {
      return this.resolve(path, follow).found !== null;
    } catch {
      return false;
    }
  }

  private list(d: MDir): DirEntry[] {
    const names = new Set<string>();
    for (const s of d.sources) for (const n of s.children.keys()) names.add(n);
    const out: DirEntry[] = [];
    for (const name of [...names].sort()) {
      const hit = this.childIn(d.sources, name, true);
      if (!hit) continue;
      if (hit.leaf) out.push({ name, type: hit.leaf.kind, ino: hit.leaf.ino });
      else out.push({ name, type: 'dir', ino: hit.dirs[0]!.ino });
    }
    return out;
  }

  /** The merged entries of a directory, sorted by name (a stable order: resume after a name with `after`). */
  readdir(path: string, after?: string): DirEntry[] {
    const r = this.existing(path, true);
    if (!r.found.dir) throw fsError('NOTDIR', `not a directory: /${r.path}`);
    const all = this.list(r.found.dir);
    return after === undefined ? all : all.filter((e) => e.name > after);
  }

  readlink(path: string): string {
    const r = this.existing(path, false);
    if (r.found.leaf?.kind !== 'symlink') throw fsError('INVAL', `not a symbolic link: /${r.path}`);
    return r.found.leaf.target;
  }

  /** Opens a file; the handle stays valid across renames and copy-ups. */
  open(path: string, o: OpenOptions = {}): FileHandle {
    const r = this.resolve(path, o.follow ?? true);
    if (r.found && o.create && o.exclusive) throw fsError('EXIST', `file exists: /${r.path}`);
    let leaf: Leaf;
    if (!r.found) {
      if (!o.create) throw fsError('NOENT', `no such file or directory: /${r.path}`);
      if (!r.parent) throw fsError('ISDIR', 'is a directory: /');
      this.reserveFiles(1);
      const t = this.now();
      const node: FileNode = { kind: 'file', ino: this.upper.nextIno++, meta: { mode: (o.mode ?? 0o644) & 0o7777, uid: 0, gid: 0, atime: t, mtime: t, ctime: t }, layer: UPPER, size: 0, chunks: new Map(), nlink: 1, paths: [] };
      this.place(r.parent, r.name, node);
      this.used.files++;
      leaf = node;
    } else if (r.found.dir) {
      throw fsError('ISDIR', `is a directory: /${r.path}`);
    } else {
      leaf = r.found.leaf;
      if (leaf.kind === 'symlink') throw fsError('LOOP', `is a symbolic link: /${r.path}`);
    }
    const h = new FileHandle(this, leaf);
    if (o.truncate && r.found) h.truncate(0);
    return h;
  }

  /** The current node of an inode a handle points to (the copy once it was copied up). */
  current(leaf: Leaf): Leaf {
    return leaf.layer === UPPER ? leaf : this.copies.get(leaf.ino) ?? leaf;
  }

  /** @internal used by FileHandle */
  statLeaf(leaf: Leaf): Stat {
    return this.statOf({ leaf: this.current(leaf) });
  }

  /** @internal used by FileHandle */
  utimesLeaf(leaf: Leaf, atime: bigint | undefined, mtime: bigint | undefined): void {
    const u = this.copyUp(this.current(leaf));
    this.changes.node(u);
    const m = u.meta;
    if (atime !== undefined) m.atime = atime;
    if (mtime !== undefined) m.mtime = mtime;
    m.ctime = this.now();
  }

  /** @internal used by FileHandle */
  writeLeaf(leaf: Leaf, offset: number, data: Uint8Array): void {
    if (data.length) this.checkFileSize(offset + data.length);
    const delta = data.length && leaf.kind === 'file' ? this.reserveBytes(leaf, Math.max(leaf.size, offset + data.length), offset, offset + data.length) : 0;
    // Before any change: the journal may move dirty chunks out of memory first, and may fail.
    if (data.length) this.opts.journal?.beforeWrite(this, data.length);
    const f = this.writableFile(leaf);
    this.content.write(f, offset, data);
    this.used.upperBytes += delta;
    f.meta.mtime = f.meta.ctime = this.now();
    this.changes.node(f);
  }

  /** @internal used by FileHandle */
  truncateLeaf(leaf: Leaf, size: number): void {
    if (leaf.kind === 'file' && size > leaf.size) this.checkFileSize(size);
    const delta = this.reserveBytes(leaf, size, 0, 0);
    const f = this.writableFile(leaf);
    this.content.setSize(f, size);
    this.used.upperBytes += delta;
    f.meta.mtime = f.meta.ctime = this.now();
    this.changes.node(f);
  }

  readFile(path: string): Uint8Array {
    const h = this.open(path);
    return h.read(0, h.size);
  }

  writeFile(path: string, data: Uint8Array | string, mode = 0o644): void {
    const bytes = typeof data === 'string' ? utf8(data) : data;
    const h = this.open(path, { create: true, truncate: true, mode });
    if (bytes.length) h.write(0, bytes);
  }

  pwrite(path: string, offset: number, data: Uint8Array): void {
    this.open(path).write(offset, data);
  }

  pread(path: string, offset: number, length: number): Uint8Array {
    return this.open(path).read(offset, length);
  }

  truncate(path: string, size: number): void {
    this.open(path).truncate(size);
  }

  // ---- namespace changes -------------------------------------------------------

  private touchDir(d: MDir): void {
    this.version++;
    const n = this.upperDir(d);
    n.meta.mtime = n.meta.ctime = this.now();
    this.changes.node(n);
  }

  /** Puts a node at parent/name in the upper, replacing what the upper held there. */
  private place(parent: MDir, name: string, node: Node): void {
    const bad = checkName(name);
    if (bad) throw fsError(name.length > NAME_MAX ? 'NAMETOOLONG' : 'INVAL', `${bad}: ${name}`);
    const p = this.upperDir(parent);
    const old = p.children.get(name);
    if (old?.kind === 'dir' && old !== node && old.ino >= UPPER_INO_BASE) this.used.files--;
    this.forget(old);
    p.children.set(name, node);
    this.changes.edge(p, name);
    this.changes.node(node);
    if (node.kind === 'dir') {
      node.parent = p;
      node.name = name;
    }
    this.touchDir(parent);
  }

  /** Removes parent/name from the merged view: a whiteout where a lower layer has the name. */
  private remove(parent: MDir, name: string): void {
    const p = this.upperDir(parent);
    const old = p.children.get(name);
    if (this.lowerHas(parent, name)) p.children.set(name, WHITEOUT);
    else p.children.delete(name);
    this.changes.edge(p, name);
    if (old?.kind === 'dir' && old.ino >= UPPER_INO_BASE) this.used.files--;
    if (old?.kind === 'dir' && old.parent === p) this.forget(old);
    this.touchDir(parent);
  }

  private forget(n: Node | undefined): void {
    if (n?.kind === 'dir') {
      if (n.redirect !== null && this.upper.redirects.get(n.redirect) === n) this.upper.redirects.delete(n.redirect);
      n.parent = null;
    }
  }

  /** Drops one name of a leaf; a lower hard-link group is copied up first so its count stays right. */
  private dropName(leaf: Leaf): void {
    const u = leaf.layer === UPPER ? leaf : leaf.nlink > 1 ? this.copyUp(leaf) : null;
    if (!u) return;
    const before = this.leafFiles(u, u.nlink);
    u.nlink--;
    this.used.files += this.leafFiles(u, u.nlink) - before;
    // The last name gone: its content leaves the upper with it.
    if (u.nlink === 0 && u.kind === 'file') this.used.upperBytes -= this.fileBytes(u);
    u.meta.ctime = this.now();
    if (u.nlink <= 0 && u.ino < UPPER_INO_BASE && this.copies.get(u.ino) === u) this.copies.delete(u.ino);
    this.changes.node(u);
  }

  mkdir(path: string, mode = 0o755): void {
    const r = this.resolve(path, false);
    if (r.found || !r.parent) throw fsError('EXIST', `file exists: /${r.path}`);
    this.reserveFiles(1);
    const t = this.now();
    const upperParent = this.upperDir(r.parent);
    const d = newDir(UPPER, this.upper.nextIno++, { mode: mode & 0o7777, uid: 0, gid: 0, atime: t, mtime: t, ctime: t }, upperParent, r.name);
    // Over a whiteout of our own, the new directory must hide the lower one.
    d.opaque = upperParent.children.get(r.name)?.kind === 'whiteout';
    this.place(r.parent, r.name, d);
    this.used.files++;
  }

  rmdir(path: string): void {
    const r = this.existing(path, false);
    if (!r.parent) throw fsError('BUSY', 'cannot remove the root directory');
    if (!r.found.dir) throw fsError('NOTDIR', `not a directory: /${r.path}`);
    if (this.list(r.found.dir).length) throw fsError('NOTEMPTY', `directory not empty: /${r.path}`);
    this.remove(r.parent, r.name);
  }

  unlink(path: string): void {
    const r = this.existing(path, false);
    if (r.found.dir) throw fsError('ISDIR', `is a directory: /${r.path}`);
    this.dropName(r.found.leaf);
    this.remove(r.parent!, r.name);
  }

  symlink(target: string, path: string): void {
    if (target.includes('\0')) throw fsError('INVAL', 'symlink target contains a NUL byte');
    if (target.length > PATH_MAX) throw fsError('NAMETOOLONG', 'symlink target too long');
    const r = this.resolve(path, false);
    if (r.found || !r.parent) throw fsError('EXIST', `file exists: /${r.path}`);
    this.reserveFiles(1);
    const t = this.now();
    this.place(r.parent, r.name, { kind: 'symlink', ino: this.upper.nextIno++, meta: { mode: 0o777, uid: 0, gid: 0, atime: t, mtime: t, ctime: t }, layer: UPPER, target, nlink: 1, paths: [] });
    this.used.files++;
  }

  link(from: string, to: string, followFrom = false): void {
    const src = this.existing(from, followFrom);
    if (src.found.dir) throw fsError('PERM', `cannot hard-link a directory: /${src.path}`);
    const dst = this.resolve(to, false);
    if (dst.found || !dst.parent) throw fsError('EXIST', `file exists: /${dst.path}`);
    const bad = checkName(dst.name);
    if (bad) throw fsError(dst.name.length > NAME_MAX ? 'NAMETOOLONG' : 'INVAL', `${bad}: ${dst.name}`);
    this.reserveFiles(1);
    const u = this.copyUp(src.found.leaf);
    this.place(dst.parent, dst.name, u);
    const before = this.leafFiles(u, u.nlink);
    u.nlink++;
    this.used.files += this.leafFiles(u, u.nlink) - before;
    u.meta.ctime = this.now();
    this.changes.node(u);
  }

  rename(from: string, to: string): void {
    const src = this.existing(from, false);
    const dst0 = this.resolve(to, false);
    if (!src.parent || !dst0.parent) throw fsError('BUSY', 'cannot rename the root directory');
    if (src.path === dst0.path) return;
    if (src.found.dir && (dst0.path + '/').startsWith(src.path + '/')) throw fsError('INVAL', `cannot move /${src.path} into itself`);
    if (dst0.found) {
      if (src.found.dir) {
        if (!dst0.found.dir) throw fsError('NOTDIR', `not a directory: /${dst0.path}`);
        if (this.list(dst0.found.dir).length) throw fsError('NOTEMPTY', `directory not empty: /${dst0.path}`);
      } else {
        if (dst0.found.dir) throw fsError('ISDIR', `is a directory: /${dst0.path}`);
        if (dst0.found.leaf === src.found.leaf) return;
      }
    }
    let moving: Node;
    if (src.found.leaf) {
      moving = src.found.leaf.layer === UPPER ? src.found.leaf : src.found.leaf.nlink > 1 ? this.copyUp(src.found.leaf) : this.detachedCopy(src.found.leaf);
      moving.meta.ctime = this.now();
    } else {
      const d = src.found.dir;
      const top = d.sources[0]!;
      const hasLower = d.sources.some((s) => s.layer !== UPPER);
      const node = top.layer === UPPER ? top : newDir(UPPER, top.ino, { ...top.meta }, null, src.name);
      if (!node.opaque && node.redirect === null) {
        if (hasLower) {
          node.redirect = d.lowerPath;
          this.upper.redirects.set(node.redirect, node);
        } else node.opaque = true;
      }
      node.meta.ctime = this.now();
      moving = node;
    }
    // Both paths were resolved before any change, as rename(2) does; upperDir()
    // finds upper nodes that copy-up may have added since.
    if (dst0.found?.leaf) this.dropName(this.current(dst0.found.leaf));
    const up = this.upperDir(src.parent);
    if (up.children.get(src.name) === moving && moving.kind === 'dir') moving.parent = null;
    if (this.lowerHas(src.parent, src.name)) up.children.set(src.name, WHITEOUT);
    else up.children.delete(src.name);
    this.changes.edge(up, src.name);
    this.touchDir(src.parent);
    this.place(dst0.parent, dst0.name, moving);
    if (moving.kind === 'dir' && moving.redirect !== null) this.upper.redirects.set(moving.redirect, moving);
  }

  /** A copy of a single-name lower leaf that is about to move (its old name becomes a whiteout). */
  private detachedCopy(leaf: Leaf): Leaf {
    const copy = cloneLeaf(leaf);
    copy.base = leaf;
    copy.nlink = 1;
    this.copies.set(leaf.ino, copy);
    return copy;
  }

  /** Writable metadata of whatever `path` names (copying it up, metadata only). */
  private writableMeta(path: string, follow: boolean): Meta {
    const r = this.existing(path, follow);
    const n = r.found.dir ? this.upperDir(r.found.dir) : this.copyUp(r.found.leaf);
    this.changes.node(n);
    return n.meta;
  }

  chmod(path: string, mode: number, follow = true): void {
    const m = this.writableMeta(path, follow);
    m.mode = mode & 0o7777;
    m.ctime = this.now();
  }

  /** Sets times in nanoseconds; `undefined` leaves one unchanged. */
  utimes(path: string, atime: bigint | undefined, mtime: bigint | undefined, follow = true): void {
    const m = this.writableMeta(path, follow);
    if (atime !== undefined) m.atime = atime;
    if (mtime !== undefined) m.mtime = mtime;
    m.ctime = this.now();
  }

  // ---- whole-view walks (diff, squash, export, copy out) ----------------------

  /** The merged root, for a walk that goes down by node rather than by path. */
  viewRoot(): MDir {
    return this.rootDir();
  }

  /**
   * A merged directory's entries, sorted by name, each with its node. Walks
   * use this instead of resolving each path: a guest may build (by renames)
   * a tree whose paths are longer than PATH_MAX, and resolving every path
   * from the root would cost O(depth) per entry.
   */
  viewEntries(d: MDir): Array<{ name: string; path: string; dir?: MDir; leaf?: Leaf }> {
    const names = new Set<string>();
    for (const s of d.sources) for (const n of s.children.keys()) names.add(n);
    const out: Array<{ name: string; path: string; dir?: MDir; leaf?: Leaf }> = [];
    for (const name of [...names].sort()) {
      const hit = this.childIn(d.sources, name, true);
      if (!hit) continue;
      if (hit.leaf) out.push({ name, path: joinPath(d.path, name), leaf: hit.leaf });
      else {
        const dir = this.childDir(d, name, hit.dirs);
        out.push({ name, path: dir.path, dir });
      }
    }
    return out;
  }

  /** One entry of a merged directory by name, like `viewEntries` without listing the rest. */
  viewChild(d: MDir, name: string): { dir?: MDir; leaf?: Leaf } | null {
    return this.lookup(d, name);
  }

  /** For diff and commit: the lower-only view of a merged path (what the image alone has there). */
  lowerLookup(path: string): Hit {
    let s = this.lowerRoots(this.lowers.length);
    if (path === '') return { dirs: s };
    const comps = path.split('/');
    for (let i = 0; i < comps.length; i++) {
      const hit = this.childIn(s, comps[i]!, false);
      if (!hit || i === comps.length - 1) return hit;
      if (!hit.dirs) return null;
      s = hit.dirs;
    }
    return null;
  }

  /** For diff and commit: the merged node at a stored path, without following a final symlink. */
  mergedLookup(path: string): { leaf?: Leaf; dir?: DirNode; sources?: DirNode[] } | null {
    const r = this.resolve('/' + path, false);
    if (!r.found) return null;
    return r.found.leaf ? { leaf: r.found.leaf } : { dir: r.found.dir.sources[0]!, sources: r.found.dir.sources };
  }

  /** Whether anything was changed since the upper was last emptied. */
  get dirty(): boolean {
    return this.upper.root !== null;
  }

  /** Root-relative parent of a stored path, re-exported for callers that walk the view. */
  static parentOf = parentOf;
}

/** An upper copy of a lower leaf sharing its chunks (no names yet). */
function cloneLeaf(leaf: Leaf): Leaf {
  const meta = { ...leaf.meta };
  return leaf.kind === 'file'
    ? { kind: 'file', ino: leaf.ino, meta, layer: UPPER, size: leaf.size, chunks: new Map(leaf.chunks), nlink: 0, paths: [] }
    : { kind: 'symlink', ino: leaf.ino, meta, layer: UPPER, target: leaf.target, nlink: 0, paths: [] };
}

/** An open regular file. Reads see the current content; the first write copies the file up. */
export class FileHandle {
  constructor(private ov: Overlay, private leaf: Leaf) {}
  get node(): Leaf {
    return this.ov.current(this.leaf);
  }
  get size(): number {
    const n = this.node;
    return n.kind === 'file' ? n.size : 0;
  }
  /** With `view`, the result may share memory with the file: copy it before the file changes. */
  read(offset: number, length: number, view = false): Uint8Array {
    const n = this.node;
    if (n.kind !== 'file') throw fsError('INVAL', 'not a regular file');
    return this.ov.content.read(n, offset, length, view);
  }
  /** Reads into `dest` without an intermediate buffer; returns the byte count. */
  readInto(offset: number, dest: Uint8Array): number {
    const n = this.node;
    if (n.kind !== 'file') throw fsError('INVAL', 'not a regular file');
    return this.ov.content.readInto(n, offset, dest);
  }
  write(offset: number, data: Uint8Array): void {
    // Past 2^53 (a seek far beyond any file): too big, as for any offset past the largest file size.
    if (offset > Number.MAX_SAFE_INTEGER) throw fsError('FBIG', `offset ${offset} is past the largest file size`);
    if (offset < 0 || !Number.isSafeInteger(offset)) throw fsError('INVAL', `bad offset ${offset}`);
    this.ov.writeLeaf(this.node, offset, data);
  }
  truncate(size: number): void {
    if (size > Number.MAX_SAFE_INTEGER) throw fsError('FBIG', `size ${size} is past the largest file size`);
    if (size < 0 || !Number.isSafeInteger(size)) throw fsError('INVAL', `bad size ${size}`);
    this.ov.truncateLeaf(this.node, size);
  }
  stat(): Stat {
    return this.ov.statLeaf(this.leaf);
  }
  utimes(atime: bigint | undefined, mtime: bigint | undefined): void {
    this.ov.utimesLeaf(this.leaf, atime, mtime);
  }
}

export type { SymlinkNode };
