// The layerbox playground: ready images (SQLite, Ruby, a C toolbox) imported
// into IndexedDB on first use, boxes over them, an editor, a terminal, the
// box's files with their A/C/D changes, commit/history/reset/fork, and
// .lbx bundles to share a box or an image. Everything lives in the store
// `idb:playground` and is read back from it on every load.
import '@xterm/xterm/css/xterm.css';
import { createStore, del, get, set } from 'idb-keyval';
import { type Box, type BrowserStore, type ImageInfo, exportBundle, openStore, shortDigest } from '../../runtime/browser/index.js';
import { type CatalogEntry, ensureImage, entryForBox, freeName, hasImage, importRenaming, loadCatalog, nextTag, tagName } from './catalog.js';
import { CodeEditor, type Language, languageOf } from './editor.js';
import { type Outcome, runCommand, runRuby } from './runner.js';
import { OutputPane } from './terminal.js';
import { FileTree } from './tree.js';
import { Banner, Progress, askDialog, byId, describeError, download, formatBytes, formatTime, h, nextPaint } from './ui.js';

/** How long a command may run; `?timeout=SECONDS` in the page's URL changes it. */
const RUN_TIMEOUT_MS = 30_000;
/** Files larger than this open as a download, not in the editor. */
const MAX_EDIT_BYTES = 2 << 20;
/** The page's own state next to the store: the box last open and each box's script. */
const ui = createStore('layerbox-playground-ui', 'state');
const CURRENT_BOX = 'current-box';
const scriptKey = (box: string) => `script:${box}`;

const DEFAULT_SCRIPT: Record<CatalogEntry['language'], string> = {
  sql: 'SELECT sqlite_version();\n',
  ruby: 'puts "Hello from Ruby #{RUBY_VERSION}"\n',
  shell: '',
};

/** Splits a command line into words: spaces separate, quotes group, backslash escapes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) words.push(cur);
      cur = '';
      has = false;
    } else cur += c;
  }
  if (has || cur) words.push(cur);
  return words;
}

const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const joinPath = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

class Playground {
  private store!: BrowserStore;
  private catalog: CatalogEntry[] = [];
  private images: ImageInfo[] = [];
  private box: Box | null = null;
  private entry: CatalogEntry | null = null;
  private busy = false;
  private readonly timeoutMs = Number(new URLSearchParams(location.search).get('timeout')) * 1000 || RUN_TIMEOUT_MS;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;

  private readonly banner = new Banner(byId('banner'));
  private readonly progress = new Progress(byId('progress'));
  private readonly term = new OutputPane(byId('terminal'));
  private readonly tree = new FileTree(byId('file-tree'), { open: (p) => void this.act(() => this.openFile(p)), selected: () => this.updateControls() });
  private readonly editor = new CodeEditor(byId('editor'), byId('tabs'), {
    run: () => void this.act(() => this.run()),
    save: () => void this.act(() => this.save()),
    scriptChanged: (text) => this.keepScript(text),
    changed: () => this.updateControls(),
  });
  private readonly imageSelect = byId<HTMLSelectElement>('image-select');
  private readonly boxSelect = byId<HTMLSelectElement>('box-select');
  private readonly dialog = byId<HTMLDialogElement>('dialog');

  /** The terminal's text (for the page's tests). */
  terminalText(): string {
    return this.term.text();
  }

  async start(): Promise<void> {
    this.wire();
    this.updateControls();
    this.term.note('layerbox playground — pick an image, then Run (Ctrl-Enter).');
    try {
      this.store = await openStore('idb:playground', { workerUrl: '/browser-worker.js' });
      if (!this.store.runner) this.term.note('This page is not cross-origin isolated: programs run on the page, without timeouts.', 'error');
      this.catalog = await loadCatalog().catch((e) => {
        this.banner.show(describeError(e));
        return [];
      });
      await this.refreshLists();
      const boxes = Array.from(this.boxSelect.options).map((o) => o.value).filter(Boolean);
      const want = await get<string>(CURRENT_BOX, ui);
      const name = want && boxes.includes(want) ? want : boxes[0];
      if (name) await this.switchTo(name);
      else this.showWelcome(true);
    } catch (e) {
      this.banner.show(describeError(e));
    }
    this.updateControls();
  }

  // ---- wiring ---------------------------------------------------------------

  private wire(): void {
    const on = (id: string, f: () => Promise<void>) => byId(id).addEventListener('click', () => {
      byId<HTMLDetailsElement>('share-menu').open = false;
      void this.act(f);
    });
    on('new-box', () => this.newBoxFromPicker());
    on('commit', () => this.commit());
    on('reset', () => this.reset());
    on('fork', () => this.fork());
    on('export-box', () => this.exportBox());
    on('export-image', () => this.exportImage());
    on('delete-box', () => this.deleteBox());
    on('run', () => this.run());
    on('save', () => this.save());
    on('download-file', () => this.downloadSelected());
    byId('import-bundle').addEventListener('click', () => {
      byId<HTMLDetailsElement>('share-menu').open = false;
      byId<HTMLInputElement>('import-input').click();
    });
    byId('upload').addEventListener('click', () => byId<HTMLInputElement>('upload-input').click());
    byId<HTMLInputElement>('import-input').addEventListener('change', (ev) => {
      const input = ev.target as HTMLInputElement;
      const file = input.files?.[0];
      input.value = '';
      if (file) void this.act(() => this.importFile(file));
    });
    byId<HTMLInputElement>('upload-input').addEventListener('change', (ev) => {
      const input = ev.target as HTMLInputElement;
      const files = Array.from(input.files ?? []);
      input.value = '';
      if (files.length) void this.act(() => this.upload(files));
    });
    byId('clear-output').addEventListener('click', () => this.term.clear());
    byId('command-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.act(() => this.run());
    });
    this.boxSelect.addEventListener('change', () => {
      const name = this.boxSelect.value;
      if (name && name !== this.box?.name)
        void this.act(async () => {
          if (await this.mayDiscard()) await this.switchTo(name);
          else this.boxSelect.value = this.box?.name ?? '';
        });
    });
    this.imageSelect.addEventListener('change', () => this.updateControls());
    document.addEventListener('click', (ev) => {
      const menu = byId<HTMLDetailsElement>('share-menu');
      if (menu.open && !menu.contains(ev.target as Node)) menu.open = false;
    });
    window.addEventListener('unhandledrejection', (ev) => {
      ev.preventDefault();
      this.banner.show(describeError(ev.reason));
    });
    window.addEventListener('error', (ev) => this.banner.show(describeError(ev.error ?? ev.message)));
  }

  /** Runs one user action at a time; whatever it throws goes to the banner. */
  private async act(f: () => Promise<void>): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.updateControls();
    try {
      await f();
    } catch (e) {
      this.banner.show(describeError(e));
    } finally {
      this.busy = false;
      this.updateControls();
    }
  }

  /** A line under the tabs saying what Run does with them. */
  private hint(): string {
    const entry = this.entry;
    const file = this.editor.activeFile;
    if (!entry) return '';
    if (file && languageOf(file) !== entry.language) return `Ctrl-S saves ${basename(file)} into the box`;
    if (entry.run.kind === 'ruby') return file ? `Run evaluates ${basename(file)} with Ruby` : 'Run evaluates this script with Ruby';
    if (entry.run.args === 'prompt') return 'Input for the command line below; leave empty to type it in the terminal';
    return `Run pipes ${file ? basename(file) : 'this script'} into ${entry.run.args.join(' ')}`;
  }

  private updateControls(): void {
    byId('editor-hint').textContent = this.hint();
    const box = this.box;
    const imageRef = box ? (this.images.find((i) => i.digest === box.image)?.tags[0] ?? shortDigest(box.image)) : null;
    byId('export-box').textContent = box?.name ? `Download box ${box.name} (.lbx)` : 'Download box';
    byId('export-image').textContent = imageRef ? `Download image ${imageRef} (.lbx)` : 'Download image';
    byId('delete-box').textContent = box?.name ? `Delete box ${box.name}…` : 'Delete box';
    const noBox = !this.box || this.busy;
    const set = (id: string, disabled: boolean) => ((byId<HTMLButtonElement>(id).disabled = disabled));
    for (const id of ['commit', 'reset', 'fork', 'export-box', 'export-image', 'delete-box', 'upload']) set(id, noBox);
    set('run', noBox || !this.entry);
    set('save', noBox || !this.editor.activeFile);
    const sel = this.tree.selection;
    set('download-file', noBox || !sel || sel.type === 'dir' || sel.type === 'deleted');
    set('new-box', this.busy || !this.imageSelect.value);
    set('import-bundle', this.busy);
    this.boxSelect.disabled = this.busy || !this.boxSelect.value;
    this.imageSelect.disabled = this.busy;
    byId<HTMLButtonElement>('command-form').querySelector('button')!.disabled = noBox || !this.entry;
    byId('upload').title = this.box ? `Upload files into ${this.tree.targetDir(this.defaultDir())}` : 'Upload files into the box';
  }

  // ---- images and boxes ----------------------------------------------------------

  /** Re-reads images and boxes from the store into the pickers and the welcome cards. */
  private async refreshLists(): Promise<void> {
    this.images = await this.store.listImages();
    const boxes = await this.store.listBoxes();
    const keep = this.imageSelect.value;
    const ready = h('optgroup', { label: 'Ready images' });
    const catalogTags = new Set(this.catalog.map((e) => e.tag));
    for (const e of this.catalog) {
      const have = this.images.some((i) => i.tags.includes(e.tag));
      ready.append(h('option', { value: `catalog:${e.name}` }, have ? `${e.title} · ${e.tag}` : `${e.title} (download ${formatBytes(e.bytes)})`));
    }
    const mine = h('optgroup', { label: 'In this browser' });
    for (const i of this.images) for (const t of i.tags) if (!catalogTags.has(t)) mine.append(h('option', { value: `image:${t}` }, `${t} · ${formatBytes(i.size)}`));
    this.imageSelect.replaceChildren(...[ready, mine].filter((g) => g.children.length));
    if (Array.from(this.imageSelect.options).some((o) => o.value === keep)) this.imageSelect.value = keep;

    this.boxSelect.replaceChildren(...boxes.map((b) => h('option', { value: b.name }, `${b.name} · ${b.tags[0] ?? shortDigest(b.image)}`)));
    if (!boxes.length) this.boxSelect.append(h('option', { value: '' }, 'No boxes yet'));
    if (this.box?.name) this.boxSelect.value = this.box.name;

    byId('image-cards').replaceChildren(
      ...this.catalog.map((e) => {
        const have = this.images.some((i) => i.tags.includes(e.tag));
        const card = h(
          'button',
          { type: 'button', class: 'card', 'data-testid': `image-card-${e.name}` },
          h('span', { class: `card-lang lang-${e.language}` }, e.language === 'sql' ? 'SQL' : e.language === 'ruby' ? 'Ruby' : 'C'),
          h('span', { class: 'card-title' }, e.title),
          h('span', { class: 'card-text' }, e.description),
          h('span', { class: 'card-meta' }, have ? `${e.tag} · in this browser` : `${formatBytes(e.bytes)} download`),
        );
        card.addEventListener('click', () => void this.act(() => this.newBox({ entry: e })));
        return card;
      }),
    );
  }

  private showWelcome(on: boolean): void {
    byId('welcome').hidden = !on;
    byId('editor').hidden = on;
    byId('editor-head').hidden = on;
  }

  private async newBoxFromPicker(): Promise<void> {
    const v = this.imageSelect.value;
    if (v.startsWith('catalog:')) {
      const entry = this.catalog.find((e) => e.name === v.slice(8));
      if (entry) await this.newBox({ entry });
    } else if (v.startsWith('image:')) await this.newBox({ tag: v.slice(6) });
  }

  /** A new box over a ready image (downloaded first if needed) or an image of the store. */
  private async newBox(from: { entry: CatalogEntry } | { tag: string }): Promise<void> {
    if (!(await this.mayDiscard())) return;
    let tag: string;
    let base: string;
    if ('entry' in from) {
      await ensureImage(this.store, from.entry, (label, work) => this.progress.during(label, work));
      tag = from.entry.tag;
      base = from.entry.name;
    } else {
      tag = from.tag;
      base = tagName(tag);
    }
    const name = freeName(base, (await this.store.listBoxes()).map((b) => b.name));
    await this.flushCurrent();
    await this.store.createBox(name, { image: tag });
    await this.switchTo(name);
  }

  /** True when there is no unsaved file, or the user lets it go. */
  private async mayDiscard(): Promise<boolean> {
    if (!this.editor.dirty) return true;
    return askDialog(this.dialog, { title: 'Discard unsaved changes?', text: `${this.editor.openPath} has changes that are not saved in the box.`, confirm: 'Discard', danger: true }, async () => {});
  }

  private async flushCurrent(): Promise<void> {
    if (this.box) await this.box.flush();
  }

  /** Opens a box: its script, files, history and program. */
  private async switchTo(name: string): Promise<void> {
    await this.flushCurrent();
    const box = await this.store.openBox(name);
    const entry = await entryForBox(this.store, box, this.catalog);
    this.box = box;
    this.entry = entry;
    await set(CURRENT_BOX, name, ui);
    await this.refreshLists();
    const tags = this.images.find((i) => i.digest === box.image)?.tags ?? [];
    const catalogOption = entry ? `catalog:${entry.name}` : '';
    const own = tags.map((t) => `image:${t}`).find((v) => Array.from(this.imageSelect.options).some((o) => o.value === v));
    this.imageSelect.value = own ?? catalogOption;

    // The script: as last edited in this box, else the image's sample, else a default.
    const lang = entry?.language ?? 'shell';
    let script = (await get<string>(scriptKey(name), ui)) ?? null;
    if (script === null && entry?.sample && box.fs.tryStat(entry.sample)?.type === 'file') script = new TextDecoder().decode(await box.readFile(entry.sample));
    script ??= DEFAULT_SCRIPT[lang];
    const stdinOnly = entry?.run.kind === 'command' && entry.run.args === 'prompt';
    this.editor.setScript(script, stdinOnly ? 'text' : (lang as Language), stdinOnly ? 'stdin' : 'Script');

    const form = byId<HTMLFormElement>('command-form');
    form.hidden = !stdinOnly;
    const home = box.config.workingDir && box.config.workingDir !== '/' ? box.config.workingDir : '/';
    if (entry && stdinOnly) {
      byId('command-prompt').textContent = `$ ${basename(entry.run.program).replace(/\.wasm$/, '')}`;
      byId<HTMLInputElement>('command-input').placeholder = `ls -l ${home}`;
    }
    // No sample to run: show the image's README, if it has one, in the file tab.
    const readme = joinPath(home, 'README.txt');
    if (entry && !entry.sample && box.fs.tryStat(readme)?.type === 'file') await this.openFile(readme);

    this.showWelcome(false);
    this.tree.resetFor([...(entry?.sample ? [entry.sample] : []), '/data/x', '/work/x', joinPath(home, 'x')]);
    this.refreshBox();
    await this.refreshHistory();
    this.setStatus('');
    this.term.endLine();
    this.term.note(`── box ${name} · ${tags[0] ?? shortDigest(box.image)}${entry ? ` · ${entry.title}` : ''} ──`);
    if (!entry) this.term.note('The playground does not know how to run this image: its files are still yours to browse and edit.');
    else if (stdinOnly) this.term.note(`Type a command above (e.g. ls -l ${home}) and press Enter. Its input is the stdin tab when that is not empty, else what you type here.`);
  }

  /** Tree and controls after the box changed. */
  private refreshBox(): void {
    if (!this.box) return;
    this.tree.render(this.box);
    this.updateControls();
  }

  private async refreshHistory(): Promise<void> {
    const list = byId('history-list');
    if (!this.box) return void list.replaceChildren();
    const box = this.box;
    const info = this.images.find((i) => i.digest === box.image);
    byId('history-image').textContent = info?.tags.join(', ') || shortDigest(box.image);
    const rows = await this.store.history(box.image);
    const items: HTMLElement[] = [];
    const pending = box.diff().length;
    if (pending) items.push(h('li', { class: 'pending', 'data-testid': 'history-pending' }, h('div', { class: 'msg' }, `${pending} uncommitted change${pending === 1 ? '' : 's'}`), h('div', { class: 'meta' }, 'Commit to keep them as a new layer')));
    for (const r of rows) {
      items.push(
        h(
          'li',
          { 'data-testid': 'history-row', title: `layer ${r.layer}\n${r.createdBy}` },
          h('div', { class: 'msg' }, r.comment || r.createdBy),
          h('div', { class: 'meta' }, `${formatTime(r.created)} · ${formatBytes(r.size)} · ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'}`),
        ),
      );
    }
    list.replaceChildren(...items);
  }

  private defaultDir(): string {
    const box = this.box;
    if (!box) return '/';
    return box.fs.tryStat('/work')?.type === 'dir' ? '/work' : '/';
  }

  private keepScript(text: string): void {
    const name = this.box?.name;
    if (!name) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => {
      // A full quota: the script is still in the editor, and the next edit tries again.
      set(scriptKey(name), text, ui).catch((e) => this.banner.show(`Could not keep the script: ${describeError(e)}`));
    }, 300);
  }

  // ---- running -------------------------------------------------------------------

  private setStatus(text: string, tone: 'ok' | 'fail' | 'warn' | 'busy' | '' = ''): void {
    const el = byId('run-status');
    el.textContent = text;
    el.dataset.tone = tone;
  }

  private async run(): Promise<void> {
    const box = this.box;
    const entry = this.entry;
    if (!box || !entry) return;
    const spec = entry.run;
    const io = { out: (b: Uint8Array | string) => this.term.out(b), err: (b: Uint8Array | string) => this.term.err(b) };
    this.banner.hide();
    this.term.endLine();
    this.setStatus('Running…', 'busy');
    let outcome: Outcome;
    try {
      if (spec.kind === 'command') {
        let args: string[];
        let stdin: string | AsyncIterable<Uint8Array>;
        let from = 'script';
        if (spec.args === 'prompt') {
          // The toolbox: the command line's words; stdin from the stdin tab, else typed in the terminal.
          const line = byId<HTMLInputElement>('command-input').value;
          args = [basename(spec.program).replace(/\.wasm$/, ''), ...splitWords(line)];
          const text = this.editor.scriptText();
          stdin = text ? text : this.term.openStdin();
          from = 'stdin';
        } else {
          args = spec.args;
          const src = this.source(entry);
          from = src.from;
          stdin = spec.stdin === 'editor' ? src.text : this.term.openStdin();
        }
        this.term.note(`$ ${args.join(' ')}${typeof stdin === 'string' && stdin ? ` < ${from}` : ''}`, 'strong');
        outcome = await runCommand(box, spec, { args, stdin, timeoutMs: this.timeoutMs }, io);
      } else {
        const src = this.source(entry);
        this.term.note(`$ ruby ${src.from}`, 'strong');
        outcome = await runRuby(box, spec, src.text, this.timeoutMs, io, async (what) => {
          this.setStatus(`${what}…`, 'busy');
          await nextPaint();
        });
      }
    } catch (e) {
      this.setStatus('Failed', 'fail');
      this.countRun();
      throw e;
    } finally {
      this.term.closeStdin();
      this.refreshBox();
      await this.refreshHistory();
    }
    this.report(outcome);
    this.countRun();
  }

  /** Counts finished runs on the status element (tests wait for it). */
  private countRun(): void {
    const status = byId('run-status');
    status.dataset.runs = String(Number(status.dataset.runs ?? 0) + 1);
  }

  /** What Run feeds the program: the open file when it is in the image's language, else the script. */
  private source(entry: CatalogEntry): { text: string; from: string } {
    const file = this.editor.activeFile;
    if (file && languageOf(file) === entry.language) return { text: this.editor.text(), from: file };
    return { text: this.editor.scriptText(), from: entry.language === 'ruby' ? 'script.rb' : entry.language === 'sql' ? 'script.sql' : 'script' };
  }

  private report(o: Outcome): void {
    this.term.endLine();
    const secs = `${(o.ms / 1000).toFixed(o.ms < 10_000 ? 2 : 1)} s`;
    if (o.timedOut) {
      this.setStatus(`Timed out · exit ${o.exitCode}`, 'warn');
      this.term.note(`[stopped after ${this.timeoutMs / 1000} s: timeout, exit ${o.exitCode}]`, 'error');
      this.banner.show(`The program ran for more than ${this.timeoutMs / 1000} s and was stopped (timeout, exit ${o.exitCode}).`, 'warn');
    } else if (o.trap) {
      this.setStatus(`Crashed · exit ${o.exitCode}`, 'fail');
      this.term.note(`[trap: ${o.trap} · exit ${o.exitCode}]`, 'error');
      this.banner.show(`The program crashed (WebAssembly trap: ${o.trap}), exit ${o.exitCode}.`, 'warn');
    } else {
      this.setStatus(`exit ${o.exitCode} · ${secs}`, o.exitCode === 0 ? 'ok' : 'fail');
      this.term.note(`[exit ${o.exitCode} · ${secs}]`, o.exitCode === 0 ? 'dim' : 'error');
    }
  }

  // ---- files ---------------------------------------------------------------------

  private async openFile(path: string): Promise<void> {
    const box = this.box;
    if (!box) return;
    const st = box.fs.stat(path);
    const name = basename(path);
    if (st.type !== 'file') return;
    if (this.editor.openPath === path && this.editor.dirty) return this.editor.show('file');
    if (this.editor.openPath !== path && !(await this.mayDiscard())) return;
    if (st.size > MAX_EDIT_BYTES) return void this.banner.show(`${name} is ${formatBytes(st.size)}: too large for the editor. Download it instead.`, 'info');
    const bytes = await box.readFile(path);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      if (text.includes('\0')) throw new Error('binary');
    } catch {
      return void this.banner.show(`${name} is a binary file (${formatBytes(st.size)}): use Download to look inside.`, 'info');
    }
    this.banner.hide();
    this.editor.openFile(path, text);
  }

  private async save(): Promise<void> {
    const box = this.box;
    const path = this.editor.activeFile;
    if (!box || !path) return;
    box.fs.writeFile(path, this.editor.text(), box.fs.tryStat(path)?.mode ?? 0o644);
    await box.flush();
    this.editor.markSaved();
    this.refreshBox();
    await this.refreshHistory();
  }

  private async downloadSelected(): Promise<void> {
    const sel = this.tree.selection;
    if (!this.box || !sel || sel.type === 'dir' || sel.type === 'deleted') return;
    download(await this.box.readFile(sel.path), basename(sel.path));
  }

  private async upload(files: File[]): Promise<void> {
    const box = this.box;
    if (!box) return;
    const dir = this.tree.targetDir(this.defaultDir());
    await this.progress.during(`Uploading to ${dir}`, async (update) => {
      let done = 0;
      const total = files.reduce((s, f) => s + f.size, 0);
      for (const f of files) {
        box.fs.writeFile(joinPath(dir, f.name), new Uint8Array(await f.arrayBuffer()));
        done += f.size;
        update(done, total);
      }
      await box.flush();
    });
    this.tree.expand([joinPath(dir, 'x')]);
    this.refreshBox();
    await this.refreshHistory();
    this.banner.show(`Uploaded ${files.length === 1 ? files[0]!.name : `${files.length} files`} to ${dir}.`, 'info');
  }

  // ---- commit, reset, fork, delete -------------------------------------------------

  private async commit(): Promise<void> {
    const box = this.box;
    if (!box?.name) return;
    // The new tag takes the name of the box's image (sqlite:latest → sqlite:v1, sqlite:v1 → sqlite:v2).
    const current = this.images.find((i) => i.digest === box.image)?.tags[0];
    const name = current ? tagName(current) : (this.entry?.name ?? tagName(box.name.replace(/-\d+$/, '')));
    const changes = box.diff().length;
    const tag = nextTag(name, this.images.flatMap((i) => i.tags));
    const done = await askDialog(
      this.dialog,
      {
        title: `Commit ${box.name}`,
        text: changes ? `${changes} change${changes === 1 ? '' : 's'} become a new layer on top of the box's image; the box then stands on the new image.` : 'The box has no changes: there is nothing to commit.',
        fields: [
          { name: 'message', label: 'Message', placeholder: 'What changed?' },
          { name: 'tag', label: 'Tag', value: tag },
        ],
        confirm: 'Commit',
      },
      async (v) => {
        if (!box.diff().length) throw new Error('Nothing to commit: the box has no changes.');
        await this.progress.during(`Committing ${changes} change${changes === 1 ? '' : 's'}`, () => box.commit({ tag: v.tag || tag, message: v.message }));
      },
    );
    if (!done) return;
    await this.refreshLists();
    this.refreshBox();
    await this.refreshHistory();
    this.term.note(`── committed ${box.name} as ${shortDigest(box.image)} ──`);
  }

  private async reset(): Promise<void> {
    const box = this.box;
    if (!box?.name) return;
    const n = box.diff().length;
    await askDialog(this.dialog, { title: `Reset ${box.name}?`, text: n ? `This drops ${n} change${n === 1 ? '' : 's'} made since the last commit.` : 'The box has no changes.', confirm: 'Reset', danger: true }, async () => {
      await box.reset();
    });
    this.refreshBox();
    await this.refreshHistory();
  }

  private async fork(): Promise<void> {
    const box = this.box;
    if (!box?.name) return;
    const from = box.name;
    const suggested = freeName(from.replace(/-\d+$/, ''), (await this.store.listBoxes()).map((b) => b.name));
    let made: string | null = null;
    await askDialog(this.dialog, { title: `Fork ${from}`, text: 'A copy of the box, changes included. The two go their own ways from here.', fields: [{ name: 'name', label: 'New box', value: suggested }], confirm: 'Fork' }, async (v) => {
      const fresh = await box.fork(v.name || suggested);
      made = fresh.name;
    });
    if (!made) return;
    await set(scriptKey(made), this.editor.scriptText(), ui);
    await this.switchTo(made);
  }

  private async deleteBox(): Promise<void> {
    const box = this.box;
    if (!box?.name) return;
    const name = box.name;
    const ok = await askDialog(this.dialog, { title: `Delete ${name}?`, text: 'The box and its uncommitted changes go. Images stay.', confirm: 'Delete', danger: true }, async () => {
      await this.store.removeBox(name);
      await this.store.gc();
    });
    if (!ok) return;
    await del(scriptKey(name), ui);
    this.box = null;
    this.entry = null;
    await this.refreshLists();
    const next = this.boxSelect.options[0]?.value;
    if (next) await this.switchTo(next);
    else {
      await del(CURRENT_BOX, ui);
      this.editor.setScript('', 'text', 'Script');
      byId('file-tree').replaceChildren();
      byId('history-list').replaceChildren();
      byId('history-image').textContent = '';
      this.showWelcome(true);
    }
  }

  // ---- sharing -------------------------------------------------------------------

  private async exportBox(): Promise<void> {
    const box = this.box;
    if (!box?.name) return;
    const name = box.name;
    await box.flush();
    const bytes = await this.progress.during(`Packing box ${name}`, () => exportBundle(this.store, { boxes: [name] }));
    download(bytes, `${name}.lbx`);
  }

  private async exportImage(): Promise<void> {
    const box = this.box;
    if (!box) return;
    const ref = this.images.find((i) => i.digest === box.image)?.tags[0] ?? box.image;
    const bytes = await this.progress.during(`Packing image ${ref}`, () => exportBundle(this.store, { images: [ref] }));
    download(bytes, `${ref.replace(/^sha256:/, '').replace(/[:/]/g, '-')}.lbx`);
  }

  private async importFile(file: File): Promise<void> {
    const bytes = await this.progress.during(`Reading ${file.name}`, async (update) => {
      update(0, file.size);
      const b = new Uint8Array(await file.arrayBuffer());
      update(b.length, file.size);
      return b;
    });
    const { index, renamed } = await this.progress.during(`Opening ${file.name}`, () => importRenaming(this.store, bytes));
    await this.refreshLists();
    const tags = index.images.flatMap((i) => i.tags);
    const parts: string[] = [];
    if (index.boxes.length) parts.push(`box${index.boxes.length === 1 ? '' : 'es'} ${index.boxes.map((b) => b.name).join(', ')}`);
    if (tags.length) parts.push(`image${tags.length === 1 ? '' : 's'} ${tags.join(', ')}`);
    const note = renamed.length ? ` (${renamed.map(([a, b]) => `${a} was taken: opened as ${b}`).join('; ')})` : '';
    this.banner.show(`Opened ${file.name}: ${parts.join(' and ') || 'nothing new'}${note}.`, 'info');
    if (index.boxes[0]) await this.switchTo(index.boxes[0].name);
    else if (tags[0] && (await hasImage(this.store, tags[0]))) {
      const v = `image:${tags[0]}`;
      if (Array.from(this.imageSelect.options).some((o) => o.value === v)) this.imageSelect.value = v;
    }
  }
}

const app = new Playground();
/** For the page's tests: the terminal's text, and a flag once the page is up. */
Object.assign(window, { playground: { terminalText: () => app.terminalText() } });
void app.start().finally(() => Object.assign(window, { ready: true }));
