/**
 * Path handling for stored tables and guest paths. Guest path *resolution*
 * (symlinks, `..`, confinement) is done by the overlay's resolver; this module
 * only splits and checks names.
 */

/** Longest single name (bytes, as on Linux). */
export const NAME_MAX = 255;
/** Longest path handed to the filesystem. */
export const PATH_MAX = 4096;

const enc = new TextEncoder();

/** Returns why a name cannot be stored, or null if it can. */
export function checkName(name: string): string | null {
  if (name === '' ) return 'empty name';
  if (name === '.' || name === '..') return `reserved name ${name}`;
  if (name.includes('/')) return 'name contains /';
  if (name.includes('\0')) return 'name contains a NUL byte';
  // Encoded only when it could be too long: a deep path checks thousands of short names.
  if (name.length * 3 > NAME_MAX && enc.encode(name).length > NAME_MAX) return `name longer than ${NAME_MAX} bytes`;
  return null;
}

/** Returns why a stored path (`a/b/c`, root `''`) is not normalised, or null. */
export function checkStoredPath(path: string): string | null {
  if (path === '') return null;
  for (const c of path.split('/')) {
    const bad = checkName(c);
    if (bad) return bad;
  }
  return null;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Stored form of a user-facing absolute path: `/a/b/` -> `a/b`; `.` removed, `..` clamped at the root. */
export function normalizeUserPath(p: string): string {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out.join('/');
}

/** `a/b` -> `/a/b`, root `''` -> `/`. */
export function displayPath(stored: string): string {
  return '/' + stored;
}
