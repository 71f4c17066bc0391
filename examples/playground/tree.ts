// The file tree: the box's merged view, read with box.fs.readdir as folders
// are opened, marked with box.diff() — A (added, green), C (changed, amber),
// D (deleted, red; the name struck through where it used to be).
import type { Box, Change, FileType } from '../../runtime/browser/index.js';
import { formatBytes, h } from './ui.js';

export interface TreeHooks {
  /** A file was clicked. */
  open(path: string): void;
  /** The selection changed. */
  selected(): void;
}

const KIND_TITLE = { A: 'Added', C: 'Changed', D: 'Deleted' } as const;
/** Folders with more entries show this many and a count of the rest. */
const MAX_ENTRIES = 400;

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export class FileTree {
  private readonly expanded = new Set<string>(['/']);
  /** Changes already seen: a new one opens the folders above it once. */
  private seen = new Set<string>();
  private box: Box | null = null;
  private marks = new Map<string, Change['kind']>();
  selection: { path: string; type: FileType | 'deleted' } | null = null;

  constructor(private readonly el: HTMLElement, private readonly hooks: TreeHooks) {
    el.addEventListener('click', (ev) => this.onClick(ev));
    el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        this.onClick(ev);
      }
    });
  }

  /** Opens these folders (and the ones above them) the first time a box is shown. */
  expand(paths: string[]): void {
    for (const p of paths) for (let d = p; d !== '/'; d = parentOf(d)) this.expanded.add(d);
  }

  /** Forgets folder state (another box). */
  resetFor(paths: string[]): void {
    this.expanded.clear();
    this.expanded.add('/');
    this.seen = new Set();
    this.selection = null;
    this.expand(paths);
  }

  render(box: Box): Change[] {
    this.box = box;
    const changes = box.diff();
    this.marks = new Map(changes.map((c) => [c.path, c.kind]));
    for (const c of changes) {
      const key = `${c.kind} ${c.path}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.expand([parentOf(c.path)]);
    }
    if (this.selection && this.selection.type !== 'deleted' && !box.fs.exists(this.selection.path, false)) this.selection = null;
    const rows: HTMLElement[] = [];
    this.renderDir(box, '/', 0, rows);
    if (!rows.length) rows.push(h('div', { class: 'tree-empty' }, 'This box is empty.'));
    const scroll = this.el.scrollTop;
    this.el.replaceChildren(...rows);
    this.el.scrollTop = scroll;
    return changes;
  }

  /** Rows of the expanded tree under `root`, in order, on an explicit stack: a guest may nest directories deeper than the JS stack. */
  private renderDir(box: Box, root: string, rootDepth: number, rows: HTMLElement[]): void {
    type Item = { dir: string; depth: number } | { row: HTMLElement };
    const stack: Item[] = [{ dir: root, depth: rootDepth }];
    for (let item = stack.pop(); item; item = stack.pop()) {
      if ('row' in item) {
        rows.push(item.row);
        continue;
      }
      const { dir, depth } = item;
      let entries: Array<{ name: string; type: FileType | 'deleted' }>;
      try {
        entries = box.fs.readdir(dir).map((e) => ({ name: e.name, type: e.type }));
      } catch {
        continue;
      }
      const names = new Set(entries.map((e) => e.name));
      for (const [path, kind] of this.marks) if (kind === 'D' && parentOf(path) === dir && path !== '/' && !names.has(path.slice(path.lastIndexOf('/') + 1))) entries.push({ name: path.slice(path.lastIndexOf('/') + 1), type: 'deleted' });
      entries.sort((a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      // Pushed in reverse, so they pop in order: each row, then its open subtree.
      const items: Item[] = [];
      for (const e of entries.slice(0, MAX_ENTRIES)) {
        const path = join(dir, e.name);
        items.push({ row: this.row(box, path, e.name, e.type, depth) });
        if (e.type === 'dir' && this.expanded.has(path)) items.push({ dir: path, depth: depth + 1 });
      }
      if (entries.length > MAX_ENTRIES) items.push({ row: h('div', { class: 'tree-more', style: `--depth:${depth}` }, `… ${entries.length - MAX_ENTRIES} more`) });
      for (let i = items.length - 1; i >= 0; i--) stack.push(items[i]!);
    }
  }

  private row(box: Box, path: string, name: string, type: FileType | 'deleted', depth: number): HTMLElement {
    const kind = type === 'deleted' ? 'D' : this.marks.get(path);
    const open = type === 'dir' && this.expanded.has(path);
    const selected = this.selection?.path === path;
    const row = h('div', {
      class: `row${selected ? ' selected' : ''}${type === 'deleted' ? ' deleted' : ''}`,
      role: 'treeitem',
      tabindex: '0',
      style: `--depth:${depth}`,
      'data-testid': 'tree-row',
      'data-path': path,
      'data-type': type,
      'data-change': kind,
      'aria-expanded': type === 'dir' ? String(open) : undefined,
      'aria-selected': String(selected),
      title: kind ? `${path} — ${KIND_TITLE[kind]}` : path,
    });
    row.append(h('span', { class: 'twisty', 'aria-hidden': 'true' }, type === 'dir' ? (open ? '▾' : '▸') : ''));
    row.append(h('span', { class: `icon icon-${type}`, 'aria-hidden': 'true' }));
    if (type === 'deleted') row.append(h('s', { class: 'name' }, name));
    else row.append(h('span', { class: 'name' }, name));
    if (type === 'symlink') row.append(h('span', { class: 'meta' }, `→ ${safe(() => box.fs.readlink(path), '?')}`));
    else if (type === 'file') row.append(h('span', { class: 'meta' }, formatBytes(safe(() => box.fs.stat(path).size, 0))));
    if (kind) row.append(h('span', { class: `mark mark-${kind}`, 'data-testid': 'tree-mark', title: KIND_TITLE[kind] }, kind));
    return row;
  }

  private onClick(ev: Event): void {
    const row = (ev.target as HTMLElement).closest<HTMLElement>('[data-testid="tree-row"]');
    if (!row || !this.box) return;
    const path = row.dataset.path!;
    const type = row.dataset.type as FileType | 'deleted';
    this.selection = { path, type };
    if (type === 'dir') {
      if (this.expanded.has(path)) this.expanded.delete(path);
      else this.expanded.add(path);
    }
    this.render(this.box);
    this.hooks.selected();
    if (type === 'file' || type === 'symlink') this.hooks.open(path);
    this.el.querySelector<HTMLElement>(`[data-path="${CSS.escape(path)}"]`)?.focus();
  }

  /** The folder uploads go to: the selected folder, the selected file's, or `fallback`. */
  targetDir(fallback: string): string {
    const s = this.selection;
    if (!s || s.type === 'deleted') return fallback;
    return s.type === 'dir' ? s.path : parentOf(s.path);
  }
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}
