import type { Digest } from '../digest.js';
import type { BoxRecord } from '../store/backend.js';

/** What a guest worker needs to mount its box and run one program. */
export interface StartMessage {
  t: 'start';
  sab: SharedArrayBuffer;
  /** Null: an ephemeral box over `record.image` whose changes are dropped. */
  name: string | null;
  record: BoxRecord;
  chunkSize: number;
  wasm: Uint8Array | WebAssembly.Module;
  args: string[];
  env: string[];
  stdin: Uint8Array;
  /** With a streamed stdin: a mailbox the guest pulls from (see remote/stdin.ts). */
  stdinSab?: SharedArrayBuffer;
  tty?: { stdin?: boolean; stdout?: boolean; stderr?: boolean };
}

/** A box's journal as the guest worker leaves it: the store's side folds it in (Store.checkpoint). */
export interface Snapshot {
  expect: BoxRecord;
  journal: Uint8Array;
}

export type GuestMessage =
  | { t: 'read'; digest: Digest; offset: number }
  | { t: 'out'; fd: 1 | 2; data: Uint8Array }
  | { t: 'stdin'; max: number }
  | { t: 'exit'; code: number; trap?: string; snapshot: Snapshot | null }
  | { t: 'error'; message: string };
