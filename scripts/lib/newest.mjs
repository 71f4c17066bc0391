import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time of a file, or of everything under a directory. */
export function newest(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = st.mtimeMs;
  for (const e of readdirSync(p)) t = Math.max(t, newest(join(p, e)));
  return t;
}
