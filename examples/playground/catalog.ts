// The ready images (dist/playground/images/images.json and its .lbx bundles),
// fetched with progress and imported into the store on first use; names for
// new boxes and tags; which image a box was made from.
import { type Box, type BrowserStore, type BundleIndex, importBundle, readTar, writeTar } from '../../runtime/browser/index.js';

/** How a box of an image runs its program. */
export type RunSpec =
  | { kind: 'command'; program: string; args: string[] | 'prompt'; stdin?: 'editor' }
  | { kind: 'ruby'; program: string; loadPath: string };

/** One line of images.json. */
export interface CatalogEntry {
  name: string;
  tag: string;
  file: string;
  bytes: number;
  title: string;
  description: string;
  language: 'sql' | 'ruby' | 'shell';
  sample: string | null;
  run: RunSpec;
}

export async function loadCatalog(): Promise<CatalogEntry[]> {
  const res = await fetch('images/images.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error(`images/images.json: HTTP ${res.status} (build the ready images with: node scripts/build-playground.mjs)`);
  return (await res.json()) as CatalogEntry[];
}

export async function hasImage(store: BrowserStore, ref: string): Promise<boolean> {
  try {
    await store.resolveImage(ref);
    return true;
  } catch {
    return false;
  }
}

/** Fetches a URL, reporting the bytes received as they arrive. */
export async function fetchWithProgress(url: string, expected: number, progress: (done: number, total?: number) => void): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`downloading ${url} failed: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || expected;
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let done = 0;
  progress(0, total);
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(r.value);
    done += r.value.length;
    progress(done, total);
  }
  const out = new Uint8Array(done);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type Update = (done: number, total?: number, label?: string) => void;
type During = <T>(label: string, work: (update: Update) => Promise<T>) => Promise<T>;

/** Downloads and imports a ready image unless the store has it already. */
export async function ensureImage(store: BrowserStore, entry: CatalogEntry, during: During): Promise<void> {
  if (await hasImage(store, entry.tag)) return;
  const bytes = await during(`Downloading ${entry.title}`, (update) => fetchWithProgress(`images/${entry.file}`, entry.bytes, update));
  await during(`Storing ${entry.title} in this browser`, () => importBundle(store, bytes));
  if (!(await hasImage(store, entry.tag))) throw new Error(`${entry.file} does not hold the image ${entry.tag}`);
}

/** `base-N` with the smallest N ≥ 1 not taken. */
export function freeName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  for (let n = 1; ; n++) if (!used.has(`${base}-${n}`)) return `${base}-${n}`;
}

/** `name:vN` with the smallest N ≥ 1 not taken. */
export function nextTag(name: string, tags: Iterable<string>): string {
  const used = new Set(tags);
  for (let n = 1; ; n++) if (!used.has(`${name}:v${n}`)) return `${name}:v${n}`;
}

/** The name part of a tag (`playground/sqlite:v2` → `sqlite`), usable in a box name. */
export function tagName(tag: string): string {
  const i = tag.lastIndexOf(':');
  const name = (i > 0 ? tag.slice(0, i) : tag).split('/').pop() ?? 'box';
  return name.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'box';
}

/**
 * The ready image a box comes from: the one whose bottom layer it shares
 * (committed images keep their parent's layers), else the one whose program
 * the box holds.
 */
export async function entryForBox(store: BrowserStore, box: Box, catalog: CatalogEntry[]): Promise<CatalogEntry | null> {
  const bottom = (await store.manifest(box.image)).layers[0]?.digest;
  for (const e of catalog) {
    if (!(await hasImage(store, e.tag))) continue;
    const m = await store.manifest(await store.resolveImage(e.tag));
    if (m.layers[0]?.digest === bottom) return e;
  }
  return catalog.find((e) => box.fs.tryStat(e.run.program)?.type === 'file') ?? null;
}

/**
 * Imports a bundle; a box whose name is taken comes in under a free name
 * (importBundle itself refuses the whole bundle then).
 */
export async function importRenaming(store: BrowserStore, bytes: Uint8Array): Promise<{ index: BundleIndex; renamed: Array<[string, string]> }> {
  const taken = new Set((await store.listBoxes()).map((b) => b.name));
  const renamed: Array<[string, string]> = [];
  let entries: ReturnType<typeof readTar> | null = null;
  try {
    entries = readTar(bytes);
  } catch {
    // Not a tar: importBundle says what is wrong with it.
  }
  const head = entries?.find((e) => e.path === 'layerbox-bundle.json');
  if (entries && head?.data) {
    let doc: { boxes?: Array<{ name: string }> } | null = null;
    try {
      doc = JSON.parse(new TextDecoder().decode(head.data));
    } catch {
      doc = null;
    }
    for (const b of doc?.boxes ?? []) {
      if (!taken.has(b.name)) {
        taken.add(b.name);
        continue;
      }
      const fresh = freeName(b.name.replace(/-\d+$/, ''), taken);
      renamed.push([b.name, fresh]);
      taken.add(fresh);
      b.name = fresh;
    }
    if (renamed.length) {
      head.data = new TextEncoder().encode(JSON.stringify(doc));
      bytes = writeTar(entries);
    }
  }
  return { index: await importBundle(store, bytes), renamed };
}
