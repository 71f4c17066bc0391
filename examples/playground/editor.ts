// The code editor: CodeMirror with two tabs, the box's script (what Run
// feeds the program, kept per box) and one file of the box opened from the
// tree (saved back with Save or Ctrl-S).
import { SQLite, sql } from '@codemirror/lang-sql';
import { StreamLanguage } from '@codemirror/language';
import { javascript, json } from '@codemirror/legacy-modes/mode/javascript';
import { ruby } from '@codemirror/legacy-modes/mode/ruby';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import { EditorState, type Extension } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { EditorView, basicSetup } from 'codemirror';
import { h } from './ui.js';

export type Language = 'sql' | 'ruby' | 'shell' | 'json' | 'javascript' | 'text';

/** The language of a file, by its name. */
export function languageOf(path: string): Language {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase() ?? '';
  if (ext === 'sql') return 'sql';
  if (ext === 'rb' || ext === 'gemspec' || /(^|\/)(Gemfile|Rakefile)$/.test(path)) return 'ruby';
  if (ext === 'sh' || ext === 'bash') return 'shell';
  if (ext === 'json') return 'json';
  if (ext === 'js' || ext === 'mjs') return 'javascript';
  return 'text';
}

function languageExtension(lang: Language): Extension {
  switch (lang) {
    case 'sql':
      return sql({ dialect: SQLite, upperCaseKeywords: true });
    case 'ruby':
      return StreamLanguage.define(ruby);
    case 'shell':
      return StreamLanguage.define(shell);
    case 'json':
      return StreamLanguage.define(json);
    case 'javascript':
      return StreamLanguage.define(javascript);
    default:
      return [];
  }
}

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '14px', backgroundColor: '#ffffff' },
  '.cm-scroller': { fontFamily: 'ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace', lineHeight: '1.5' },
  '.cm-gutters': { backgroundColor: '#f6f8fa', color: '#8b949e', borderRight: '1px solid #e3e7ec' },
  '.cm-activeLineGutter': { backgroundColor: '#eaeef2' },
  '.cm-activeLine': { backgroundColor: '#f6f8fa80' },
  '&.cm-focused': { outline: 'none' },
});

interface Tab {
  state: EditorState;
  /** The file's path (file tab) or null (the script). */
  path: string | null;
  /** Text as last saved (file tab). */
  saved: string;
  label: string;
}

export interface EditorHooks {
  run(): void;
  save(): void;
  /** The script changed (to keep it per box). */
  scriptChanged(text: string): void;
  /** Tabs or the dirty state changed. */
  changed(): void;
}

export class CodeEditor {
  private readonly view: EditorView;
  private script: Tab;
  private file: Tab | null = null;
  private active: 'script' | 'file' = 'script';

  constructor(parent: HTMLElement, private readonly tabBar: HTMLElement, private readonly hooks: EditorHooks) {
    this.script = { state: this.state('', 'text'), path: null, saved: '', label: 'Script' };
    this.view = new EditorView({ state: this.script.state, parent });
  }

  private state(doc: string, lang: Language): EditorState {
    return EditorState.create({
      doc,
      extensions: [
        keymap.of([
          { key: 'Mod-Enter', run: () => (this.hooks.run(), true) },
          { key: 'Mod-s', preventDefault: true, run: () => (this.hooks.save(), true) },
        ]),
        basicSetup,
        languageExtension(lang),
        theme,
        EditorView.lineWrapping,
        EditorView.updateListener.of((u) => {
          if (!u.docChanged) return;
          const tab = this.current();
          tab.state = u.state;
          if (tab === this.script) this.hooks.scriptChanged(u.state.doc.toString());
          this.renderTabs();
        }),
      ],
    });
  }

  private current(): Tab {
    return this.active === 'file' && this.file ? this.file : this.script;
  }

  /** Replaces the script (another box was opened). */
  setScript(text: string, lang: Language, label: string): void {
    this.script = { state: this.state(text, lang), path: null, saved: text, label };
    this.file = null;
    this.show('script');
  }

  /** Opens a file of the box in the file tab. */
  openFile(path: string, text: string): void {
    this.file = { state: this.state(text, languageOf(path)), path, saved: text, label: path.split('/').pop() || path };
    this.show('file');
  }

  closeFile(): void {
    this.file = null;
    this.show('script');
  }

  show(which: 'script' | 'file'): void {
    this.active = which === 'file' && this.file ? 'file' : 'script';
    this.view.setState(this.current().state);
    this.renderTabs();
  }

  /** The script's text, whichever tab is on screen. */
  scriptText(): string {
    return this.script.state.doc.toString();
  }

  /** The text of the tab on screen. */
  text(): string {
    return this.current().state.doc.toString();
  }

  /** The open file's path when its tab is on screen. */
  get activeFile(): string | null {
    return this.active === 'file' ? (this.file?.path ?? null) : null;
  }

  get openPath(): string | null {
    return this.file?.path ?? null;
  }

  get dirty(): boolean {
    return !!this.file && this.file.state.doc.toString() !== this.file.saved;
  }

  markSaved(): void {
    if (this.file) this.file.saved = this.file.state.doc.toString();
    this.renderTabs();
  }

  focus(): void {
    this.view.focus();
  }

  private renderTabs(): void {
    const tabs: HTMLElement[] = [];
    const tab = (t: Tab, which: 'script' | 'file') => {
      const on = this.active === which;
      const b = h('button', { class: `tab${on ? ' on' : ''}`, type: 'button', role: 'tab', 'aria-selected': String(on), 'data-testid': `tab-${which}`, title: t.path ?? 'The script Run uses' }, t.label);
      if (which === 'file' && this.dirty) b.append(h('span', { class: 'dirty', title: 'unsaved changes' }, ' ●'));
      b.addEventListener('click', () => this.show(which));
      tabs.push(b);
      if (which === 'file') {
        const x = h('button', { class: 'tab-close', type: 'button', title: 'Close the file', 'aria-label': 'Close the file', 'data-testid': 'tab-close' }, '×');
        x.addEventListener('click', () => this.closeFile());
        tabs.push(x);
      }
    };
    tab(this.script, 'script');
    if (this.file) tab(this.file, 'file');
    this.tabBar.replaceChildren(...tabs);
    this.hooks.changed();
  }
}
