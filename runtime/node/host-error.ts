import { writeSync } from 'node:fs';

/** Distinct causes reported per run; past it one line says more were left out (a guest can vary the paths in them without end). */
const MAX_DISTINCT = 16;

/**
 * A `GuestIo.onHostError` for the command line: each distinct cause of an
 * EIO the guest got becomes one line on the host's stderr, `layerbox: host
 * error in <call>: <message>`, the first time it happens. Written
 * synchronously (fd 2), as a worker thread's output would otherwise be lost
 * when the parent ends it.
 */
export function stderrHostErrors(write: (line: string) => void = (line) => void writeSync(2, line)): (call: string, error: unknown) => void {
  const seen = new Set<string>();
  let full = false;
  return (call, error) => {
    if (full) return;
    const message = oneLine(error instanceof Error ? error.message : String(error));
    if (seen.has(message)) return;
    if (seen.size >= MAX_DISTINCT) {
      full = true;
      write(`layerbox: host error in ${call}: further host errors not shown\n`);
      return;
    }
    seen.add(message);
    write(`layerbox: host error in ${call}: ${message}\n`);
  };
}

/** A message for one line, at most 200 characters: control characters (newlines, terminal escapes from guest paths) are shown, not sent. */
function oneLine(s: string): string {
  const t = s.length > 200 ? `${s.slice(0, 200)}...` : s;
  return t.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
