import fc from 'fast-check';
import { FsError, type Overlay, type Store } from '../../src/index.js';
import { RefError, type RefFs, type ViewRow } from './ref-fs.js';

/** One filesystem operation, applied alike to the overlay and to the reference tree. */
export type Op =
  | { op: 'writeFile'; path: string; data: number[] }
  | { op: 'pwrite'; path: string; offset: number; data: number[] }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'mkdir'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'unlink'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'chmod'; path: string; mode: number };

const name = fc.oneof({ arbitrary: fc.constantFrom('a', 'b', 'c'), weight: 12 }, { arbitrary: fc.constantFrom('d', '..', '.'), weight: 1 });
const path = fc.array(name, { minLength: 1, maxLength: 3 }).map((c) => '/' + c.join('/'));
const data = fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 20 });
const target = fc.oneof(path, fc.array(name, { minLength: 1, maxLength: 2 }).map((c) => c.join('/')));

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('writeFile' as const), path, data }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('pwrite' as const), path, offset: fc.integer({ min: 0, max: 30 }), data }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('truncate' as const), path, size: fc.integer({ min: 0, max: 30 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('mkdir' as const), path }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('rmdir' as const), path }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('unlink' as const), path }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('rename' as const), from: path, to: path }), weight: 6 },
  { arbitrary: fc.record({ op: fc.constant('symlink' as const), target, path }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('link' as const), from: path, to: path }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('chmod' as const), path, mode: fc.integer({ min: 0, max: 0o777 }) }), weight: 1 },
);

type Target = Pick<Overlay, 'writeFile' | 'pwrite' | 'truncate' | 'mkdir' | 'rmdir' | 'unlink' | 'rename' | 'symlink' | 'link' | 'chmod'>;

/** Applies an op; returns the errno name or 'ok'. */
export function apply(t: Target | RefFs, o: Op): string {
  try {
    switch (o.op) {
      case 'writeFile': t.writeFile(o.path, new Uint8Array(o.data)); break;
      case 'pwrite': t.pwrite(o.path, o.offset, new Uint8Array(o.data)); break;
      case 'truncate': t.truncate(o.path, o.size); break;
      case 'mkdir': t.mkdir(o.path); break;
      case 'rmdir': t.rmdir(o.path); break;
      case 'unlink': t.unlink(o.path); break;
      case 'rename': t.rename(o.from, o.to); break;
      case 'symlink': t.symlink(o.target, o.path); break;
      case 'link': t.link(o.from, o.to); break;
      case 'chmod': t.chmod(o.path, o.mode); break;
    }
    return 'ok';
  } catch (e) {
    if (e instanceof FsError || e instanceof RefError) return e.code;
    throw e;
  }
}

/** The overlay's merged view in the reference's shape. */
export function view(fs: Overlay): ViewRow[] {
  const out: ViewRow[] = [];
  const walk = (p: string) => {
    for (const e of fs.readdir(p || '/')) {
      const q = `${p}/${e.name}`;
      const st = fs.lstat(q);
      if (st.type === 'dir') {
        out.push({ path: q, type: 'dir', mode: st.mode, id: st.ino });
        walk(q);
      } else if (st.type === 'file') out.push({ path: q, type: 'file', mode: st.mode, content: Array.from(fs.readFile(q)).join(','), nlink: st.nlink, id: st.ino });
      else out.push({ path: q, type: 'symlink', mode: st.mode, content: fs.readlink(q), nlink: st.nlink, id: st.ino });
    }
  };
  walk('');
  return out;
}

/** Imports the reference tree as a one-layer image (hard links included). */
export async function importRef(store: Store, ref: RefFs, tag: string) {
  const rows = ref.view();
  await store.importLayer(async (b) => {
    const first = new Map<number, string>();
    for (const r of rows) {
      if (r.type === 'dir') b.addDir(r.path, { mode: r.mode });
      else if (first.has(r.id)) b.addHardlink(r.path, first.get(r.id)!);
      else {
        first.set(r.id, r.path);
        if (r.type === 'symlink') b.addSymlink(r.path, r.content!, { mode: r.mode });
        else await b.addFile(r.path, new Uint8Array(r.content ? r.content.split(',').map(Number) : []), { mode: r.mode });
      }
    }
  }, { tag });
}

/** A starting tree so that random operations often meet lower directories, files and links. */
export const SKELETON: Op[] = [
  { op: 'mkdir', path: '/a' }, { op: 'mkdir', path: '/b' }, { op: 'mkdir', path: '/a/b' }, { op: 'mkdir', path: '/a/c' },
  { op: 'writeFile', path: '/a/b/c', data: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, { op: 'writeFile', path: '/b/a', data: [7] },
  { op: 'link', from: '/b/a', to: '/a/a' }, { op: 'symlink', target: '../b', path: '/a/c/b' },
];

