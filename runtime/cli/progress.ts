/** A one-line progress display on a terminal's stderr; silent when stderr is not a terminal. */
export class Progress {
  private last = 0;
  private shown = false;
  constructor(private label: string, private stream: NodeJS.WriteStream = process.stderr) {}
  update(text: string): void {
    if (!this.stream.isTTY) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.shown = true;
    this.stream.write(`\r\x1b[K${this.label} ${text}`);
  }
  done(): void {
    if (this.shown) this.stream.write('\r\x1b[K');
  }
}
