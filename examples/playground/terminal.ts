// The output pane: xterm.js showing the guest's stdout (plain) and stderr
// (red) as they stream, notes from the playground (dim), and a line-edited
// stdin: while a program reads, what is typed here is echoed and sent a line
// at a time (Enter), Ctrl-D ends it.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';

const RED = '\x1b[31m';
const DIM = '\x1b[90m';
const BOLD = '\x1b[1m';
const RESET = '\x1b[0m';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/** Bytes typed in the terminal, as the async iterable `box.run` takes for stdin. */
class TypedInput implements AsyncIterable<Uint8Array> {
  private queue: Uint8Array[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private line = '';

  constructor(private readonly echo: (s: string) => void) {}

  key(data: string): void {
    if (this.ended) return;
    for (const ch of data) {
      if (ch === '\r' || ch === '\n') {
        this.echo('\r\n');
        this.push(this.line + '\n');
        this.line = '';
      } else if (ch === '\x7f' || ch === '\b') {
        if (this.line) {
          this.line = this.line.slice(0, -1);
          this.echo('\b \b');
        }
      } else if (ch === '\x04') {
        if (this.line) this.push(this.line);
        this.line = '';
        this.end();
      } else if (ch >= ' ') {
        this.line += ch;
        this.echo(ch);
      }
    }
  }

  private push(s: string): void {
    this.queue.push(new TextEncoder().encode(s));
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const next = this.queue.shift();
      if (next) yield next;
      else if (this.ended) return;
      else await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}

export class OutputPane {
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private input: TypedInput | null = null;

  constructor(el: HTMLElement) {
    this.term = new Terminal({
      convertEol: true,
      fontFamily: 'ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 13,
      lineHeight: 1.2,
      scrollback: 5000,
      cursorBlink: false,
      cursorInactiveStyle: 'none',
      theme: { background: '#0f1720', foreground: '#e5e9f0', cursor: '#e5e9f0', selectionBackground: '#34506e', red: '#ff7b72', brightBlack: '#8b98a8' },
    });
    this.term.loadAddon(this.fit);
    this.term.open(el);
    // The cursor shows only while a program reads what is typed here.
    this.term.write(HIDE_CURSOR);
    this.term.onData((d) => this.input?.key(d));
    new ResizeObserver(() => this.refit()).observe(el);
    this.refit();
  }

  refit(): void {
    try {
      this.fit.fit();
    } catch {
      // Not laid out yet (hidden): the next resize fits it.
    }
  }

  out(data: Uint8Array | string): void {
    this.term.write(data);
  }

  err(data: Uint8Array | string): void {
    this.term.write(RED);
    this.term.write(data);
    this.term.write(RESET);
  }

  /** A line from the playground itself (not the guest). */
  note(text: string, tone: 'dim' | 'error' | 'strong' = 'dim'): void {
    this.term.write(`${tone === 'error' ? RED : tone === 'strong' ? BOLD : DIM}${text}${RESET}\r\n`);
  }

  /** Starts a new line if the guest left the cursor mid-line. */
  endLine(): void {
    if (this.term.buffer.active.cursorX > 0) this.term.write('\r\n');
  }

  clear(): void {
    this.term.reset();
    if (!this.input) this.term.write(HIDE_CURSOR);
  }

  /** stdin fed from the keyboard until `closeStdin`. */
  openStdin(): AsyncIterable<Uint8Array> {
    this.input = new TypedInput((s) => this.term.write(s));
    this.term.write(SHOW_CURSOR);
    this.term.focus();
    return this.input;
  }

  closeStdin(): void {
    this.input?.end();
    this.input = null;
    this.term.write(HIDE_CURSOR);
  }

  /** Everything in the buffer as plain text (for the page's tests and copy). */
  text(): string {
    const b = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').trimEnd();
  }
}
