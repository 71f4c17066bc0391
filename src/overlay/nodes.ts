import type { Digest } from '../digest.js';

/** Inode metadata. Times are nanoseconds since the epoch. */
export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
}

/**
 * A chunk of file content: a stored digest or bytes changed since the last
 * flush. Invariant: bytes and stored blobs hold exactly the chunk's covered
 * length, so equal content has equal chunks.
 */
export type Chunk = Digest | Uint8Array;

/**
 * A file's chunks by index; an index that is absent is a hole (zeros). Sparse
 * so that memory grows with the chunks written, never with the file's size:
 * a 1 TiB file with one chunk written is one entry. Iteration order is
 * insertion order, so code that needs index order sorts the keys.
 */
export type ChunkMap<T = Chunk> = Map<number, T>;

/** Index of the writable upper in a stack (above every lower layer). */
export const UPPER = 1e9;

interface NodeBase {
  ino: number;
  meta: Meta;
  /** Layer index (0 = bottom) or UPPER. */
  layer: number;
}

export interface FileNode extends NodeBase {
  kind: 'file';
  size: number;
  chunks: ChunkMap;
  nlink: number;
  /** Lower nodes: the names this inode has in its own layer (a hard-link group has several). */
  paths: string[];
  /** Upper copies of a lower leaf: that leaf (the image's version), once known. */
  base?: Leaf | null;
}

export interface SymlinkNode extends NodeBase {
  kind: 'symlink';
  target: string;
  nlink: number;
  paths: string[];
  base?: Leaf | null;
}

export interface DirNode extends NodeBase {
  kind: 'dir';
  children: Map<string, Node>;
  opaque: boolean;
  /** Lower contents come from this path of the layers below (a rename across layers). */
  redirect: string | null;
  /** Upper directories only: where the node hangs, for computing its path. */
  parent: DirNode | null;
  name: string;
}

export interface Whiteout {
  kind: 'whiteout';
}

/** A non-directory inode: what hard links share. */
export type Leaf = FileNode | SymlinkNode;
export type Node = FileNode | SymlinkNode | DirNode | Whiteout;

export const WHITEOUT: Whiteout = Object.freeze({ kind: 'whiteout' as const });

export function newDir(layer: number, ino: number, meta: Meta, parent: DirNode | null, name: string): DirNode {
  return { kind: 'dir', ino, meta, layer, children: new Map(), opaque: false, redirect: null, parent, name };
}

/** A 52-bit hash of a string (cyrb53 variant): stable inode numbers for lower entries. */
export function hash52(s: string): number {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (0xfffff & h2) * 4294967296 + (h1 >>> 0) + 2;
}

/** Inode numbers at or above this are handed out by the upper; below are lower-entry hashes. */
export const UPPER_INO_BASE = 2 ** 52;
