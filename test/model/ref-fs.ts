/**
 * A plain, single-layer POSIX tree: the reference the overlay is checked
 * against. Deliberately naive (whole-file byte arrays, one inode table) so
 * that it is easy to believe.
 */

export class RefError extends Error {
  constructor(readonly code: string, msg: string) {
    super(`${code}: ${msg}`);
  }
}

type RNode =
  | { t: 'dir'; id: number; mode: number; kids: Map<string, RNode> }
  | { t: 'file'; id: number; mode: number; data: Uint8Array; nlink: number }
  | { t: 'symlink'; id: number; mode: number; target: string; nlink: number };

type RDir = Extract<RNode, { t: 'dir' }>;

interface Where {
  parent: RDir | null;
  chain: RDir[];
  name: string;
  path: string[];
  node: RNode | null;
}

const err = (code: string, msg: string) => new RefError(code, msg);

export class RefFs {
  private nextId = 1;
  root: RDir = { t: 'dir', id: this.nextId++, mode: 0o755, kids: new Map() };

  private resolve(path: string, follow: boolean): Where {
    if (path.includes('\0')) throw err('EINVAL', 'nul');
    let chain: RDir[] = [this.root];
    let comps: string[] = [];
    let todo = path.split('/');
    let mustBeDir = path.endsWith('/');
    let links = 0;
    const cur = () => chain[chain.length - 1]!;
    for (;;) {
      todo = todo.filter((c, i) => !(c === '' || c === '.') || i < 0);
      const c = todo.shift();
      if (c === undefined) {
        const me = cur();
        return { parent: chain.length > 1 ? chain[chain.length - 2]! : null, chain: chain.slice(0, -1), name: comps[comps.length - 1] ?? '', path: comps, node: me };
      }
      if (c === '..') {
        if (chain.length > 1) {
          chain = chain.slice(0, -1);
          comps = comps.slice(0, -1);
        }
        continue;
      }
      const n = cur().kids.get(c) ?? null;
      const last = todo.length === 0;
      if (n?.t === 'symlink' && (!last || follow || mustBeDir)) {
        if (++links > 40) throw err('ELOOP', path);
        if (n.target === '') throw err('ENOENT', 'empty target');
        if (n.target.endsWith('/')) mustBeDir = true;
        todo = [...n.target.split('/'), ...todo];
        if (n.target.startsWith('/')) {
          chain = [this.root];
          comps = [];
        }
        continue;
      }
      if (!last) {
        if (!n) throw err('ENOENT', path);
        if (n.t !== 'dir') throw err('ENOTDIR', path);
        chain = [...chain, n];
        comps = [...comps, c];
        continue;
      }
      if (mustBeDir && n && n.t !== 'dir') throw err('ENOTDIR', path);
      return { parent: cur(), chain, name: c, path: [...comps, c], node: n };
    }
  }

  private must(path: string, follow: boolean): Where & { node: RNode } {
    const w = this.resolve(path, follow);
    if (!w.node) throw err('ENOENT', path);
    return w as Where & { node: RNode };
  }

  private fileAt(path: string, create: boolean, mode = 0o644): Extract<RNode, { t: 'file' }> {
    const w = this.resolve(path, true);
    if (!w.node) {
      if (!create) throw err('ENOENT', path);
      const f = { t: 'file' as const, id: this.nextId++, mode, data: new Uint8Array(0), nlink: 1 };
      w.parent!.kids.set(w.name, f);
      return f;
    }
    if (w.node.t === 'dir') throw err('EISDIR', path);
    if (w.node.t === 'symlink') throw err('ELOOP', path);
    return w.node;
  }

  writeFile(path: string, data: Uint8Array): void {
    const f = this.fileAt(path, true);
    f.data = data.slice();
  }

  pwrite(path: string, offset: number, data: Uint8Array): void {
    const f = this.fileAt(path, false);
    if (!data.length) return;
    const end = offset + data.length;
    if (end > f.data.length) {
      const n = new Uint8Array(end);
      n.set(f.data);
      f.data = n;
    }
    f.data.set(data, offset);
  }

  truncate(path: string, size: number): void {
    const f = this.fileAt(path, false);
    const n = new Uint8Array(size);
    n.set(f.data.subarray(0, size));
    f.data = n;
  }

  readFile(path: string): Uint8Array {
    return this.fileAt(path, false).data.slice();
  }

  mkdir(path: string, mode = 0o755): void {
    const w = this.resolve(path, false);
    if (w.node || !w.parent) throw err('EEXIST', path);
    w.parent.kids.set(w.name, { t: 'dir', id: this.nextId++, mode, kids: new Map() });
  }

  rmdir(path: string): void {
    const w = this.must(path, false);
    if (!w.parent) throw err('EBUSY', path);
    if (w.node.t !== 'dir') throw err('ENOTDIR', path);
    if (w.node.kids.size) throw err('ENOTEMPTY', path);
    w.parent.kids.delete(w.name);
  }

  unlink(path: string): void {
    const w = this.must(path, false);
    if (w.node.t === 'dir') throw err('EISDIR', path);
    w.node.nlink--;
    w.parent!.kids.delete(w.name);
  }

  symlink(target: string, path: string): void {
    const w = this.resolve(path, false);
    if (w.node || !w.parent) throw err('EEXIST', path);
    w.parent.kids.set(w.name, { t: 'symlink', id: this.nextId++, mode: 0o777, target, nlink: 1 });
  }

  link(from: string, to: string): void {
    const s = this.must(from, false);
    if (s.node.t === 'dir') throw err('EPERM', from);
    const d = this.resolve(to, false);
    if (d.node || !d.parent) throw err('EEXIST', to);
    d.parent.kids.set(d.name, s.node);
    s.node.nlink++;
  }

  rename(from: string, to: string): void {
    const s = this.must(from, false);
    const d = this.resolve(to, false);
    if (!s.parent || !d.parent) throw err('EBUSY', 'root');
    const sp = s.path.join('/'), dp = d.path.join('/');
    if (sp === dp) return;
    if (s.node.t === 'dir' && (dp + '/').startsWith(sp + '/')) throw err('EINVAL', 'into itself');
    if (d.node) {
      if (s.node.t === 'dir') {
        if (d.node.t !== 'dir') throw err('ENOTDIR', to);
        if (d.node.kids.size) throw err('ENOTEMPTY', to);
      } else {
        if (d.node.t === 'dir') throw err('EISDIR', to);
        if (d.node === s.node) return;
        d.node.nlink--;
      }
    }
    s.parent.kids.delete(s.name);
    d.parent.kids.set(d.name, s.node);
  }

  chmod(path: string, mode: number): void {
    this.must(path, true).node.mode = mode & 0o7777;
  }

  /** Every entry below the root, sorted, without following symlinks. */
  view(): ViewRow[] {
    const out: ViewRow[] = [];
    const walk = (d: RDir, path: string) => {
      for (const name of [...d.kids.keys()].sort()) {
        const n = d.kids.get(name)!;
        const p = path + '/' + name;
        if (n.t === 'dir') {
          out.push({ path: p, type: 'dir', mode: n.mode, id: n.id });
          walk(n, p);
        } else if (n.t === 'file') out.push({ path: p, type: 'file', mode: n.mode, content: Array.from(n.data).join(','), nlink: n.nlink, id: n.id });
        else out.push({ path: p, type: 'symlink', mode: n.mode, content: n.target, nlink: n.nlink, id: n.id });
      }
    };
    walk(this.root, '');
    return out;
  }
}

export interface ViewRow {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  content?: string;
  nlink?: number;
  /** Inode identity (compared as a partition: which paths share one). */
  id: number;
}

/** Replaces inode ids by the sorted list of paths sharing them, so two trees can be compared. */
export function linkGroups(rows: ViewRow[]): Array<Omit<ViewRow, 'id'> & { sameAs: string }> {
  const byId = new Map<number, string[]>();
  for (const r of rows) if (r.type !== 'dir') byId.set(r.id, [...(byId.get(r.id) ?? []), r.path]);
  return rows.map(({ id, ...r }) => ({ ...r, sameAs: r.type === 'dir' ? '' : byId.get(id)!.join(' ') }));
}
