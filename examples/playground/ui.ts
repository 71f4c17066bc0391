// Small DOM pieces of the playground: element lookup, the message banner,
// the progress strip, modal dialogs, downloads and number formatting.

/** The element with `data-testid=id` (every element the app drives has one). */
export function byId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(`[data-testid="${id}"]`);
  if (!el) throw new Error(`playground: missing element ${id}`);
  return el;
}

/** Creates an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Array<Node | string | null | undefined>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

export type Tone = 'error' | 'warn' | 'info';

/** The banner under the header: one message at a time, dismissable. */
export class Banner {
  constructor(private readonly el: HTMLElement) {
    byId('banner-close', el).addEventListener('click', () => this.hide());
  }

  show(message: string, tone: Tone = 'error'): void {
    byId('banner-text', this.el).textContent = message;
    this.el.dataset.tone = tone;
    this.el.setAttribute('role', tone === 'info' ? 'status' : 'alert');
    this.el.hidden = false;
  }

  hide(): void {
    this.el.hidden = true;
  }
}

/** What an error says to a person; a full storage quota gets advice. */
export function describeError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const name = e instanceof Error ? e.name : '';
  if (/quota/i.test(msg) || name === 'QuotaExceededError') return `Storage is full: ${msg}. Delete boxes you no longer need, or allow this site more storage.`;
  return msg || name || 'Something went wrong';
}

/** The progress strip: a label and a bar (indeterminate without a total). */
export class Progress {
  private depth = 0;
  constructor(private readonly el: HTMLElement) {}

  /** Shows the strip for the duration of `work`, which reports through `update`. */
  async during<T>(label: string, work: (update: (done: number, total?: number, label?: string) => void) => Promise<T>): Promise<T> {
    this.depth++;
    this.set(label);
    this.el.hidden = false;
    try {
      return await work((done, total, l) => this.set(l ?? label, done, total));
    } finally {
      if (--this.depth === 0) this.el.hidden = true;
    }
  }

  private set(label: string, done?: number, total?: number): void {
    const bar = byId<HTMLProgressElement>('progress-bar', this.el);
    if (done !== undefined && total) {
      bar.max = total;
      bar.value = Math.min(done, total);
      byId('progress-text', this.el).textContent = `${label} — ${formatBytes(done)} of ${formatBytes(total)}`;
    } else {
      bar.removeAttribute('value');
      byId('progress-text', this.el).textContent = label;
    }
  }
}

/**
 * A modal dialog built from a <dialog> with a form: resolves with the form's
 * values when confirmed, null when cancelled. While `work` runs the dialog
 * stays open, busy; an error it throws is shown inside it.
 */
export function askDialog(dialog: HTMLDialogElement, opts: { title: string; text?: string; fields?: Array<{ name: string; label: string; value?: string; placeholder?: string }>; confirm: string; danger?: boolean }, work: (values: Record<string, string>) => Promise<void>): Promise<boolean> {
  const form = dialog.querySelector('form')!;
  byId('dialog-title', dialog).textContent = opts.title;
  const text = byId('dialog-text', dialog);
  text.textContent = opts.text ?? '';
  text.hidden = !opts.text;
  const fields = byId('dialog-fields', dialog);
  fields.replaceChildren(
    ...(opts.fields ?? []).map((f) => h('label', { class: 'field' }, h('span', {}, f.label), h('input', { name: f.name, value: f.value ?? '', placeholder: f.placeholder, 'data-testid': `dialog-${f.name}`, autocomplete: 'off' }))),
  );
  const ok = byId<HTMLButtonElement>('dialog-confirm', dialog);
  const cancel = byId<HTMLButtonElement>('dialog-cancel', dialog);
  const error = byId('dialog-error', dialog);
  const busy = byId('dialog-busy', dialog);
  ok.textContent = opts.confirm;
  ok.classList.toggle('danger', !!opts.danger);
  error.hidden = true;
  busy.hidden = true;
  const setBusy = (on: boolean) => {
    busy.hidden = !on;
    ok.disabled = on;
    cancel.disabled = on;
    for (const i of Array.from(fields.querySelectorAll('input'))) i.disabled = on;
  };
  setBusy(false);
  return new Promise((resolve) => {
    const done = (result: boolean) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onEscape);
      dialog.close();
      resolve(result);
    };
    const onSubmit = async (ev: Event) => {
      ev.preventDefault();
      const values: Record<string, string> = {};
      for (const i of Array.from(fields.querySelectorAll('input'))) values[i.name] = i.value.trim();
      setBusy(true);
      error.hidden = true;
      try {
        await work(values);
        done(true);
      } catch (e) {
        error.textContent = describeError(e);
        error.hidden = false;
        setBusy(false);
      }
    };
    const onCancel = () => done(false);
    const onEscape = (ev: Event) => {
      ev.preventDefault();
      if (!ok.disabled) done(false);
    };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onEscape);
    dialog.showModal();
    (fields.querySelector('input') ?? ok).focus();
  });
}

/** Offers bytes as a file download. */
export function download(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** "just now", "5 min ago", or a date for older times. */
export function formatTime(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** Lets the browser paint (before work that holds the page's thread). */
export function nextPaint(): Promise<void> {
  // rAF alone never fires in a hidden tab: a timer bounds the wait.
  return new Promise((r) => {
    const t = setTimeout(r, 50);
    requestAnimationFrame(() => setTimeout(() => (clearTimeout(t), r()), 0));
  });
}
