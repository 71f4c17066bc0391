import type { Digest } from '../digest.js';
import type { BoxRecord } from '../store/backend.js';
import type { JournalRequest } from './bridge.js';

/** What a guest worker needs to mount its box and run one program. */
export interface StartMessage {
  t: 'start';
  sab: SharedArrayBuffer;
  /** Null: an ephemeral box over `record.image` whose changes are dropped. */
  name: string | null;
  record: BoxRecord;
  chunkSize: number;
  /** The store's cache of written data (bytes past it spill to the journal) and its journal compaction threshold. */
  cacheBytes: number;
  journalCompactBytes?: number;
  wasm: Uint8Array | WebAssembly.Module;
  args: string[];
  env: string[];
  stdin: Uint8Array;
  /** With a streamed stdin: a mailbox the guest pulls from (see remote/stdin.ts). */
  stdinSab?: SharedArrayBuffer;
  tty?: { stdin?: boolean; stdout?: boolean; stderr?: boolean };
}

/** Why the guest's last changes could not be made durable at exit (the box keeps what was synced). */
export interface SyncFailure {
  message: string;
  errno?: number;
}

export type GuestMessage =
  | { t: 'read'; digest: Digest; offset: number }
  | { t: 'out'; fd: 1 | 2; data: Uint8Array }
  | { t: 'stdin'; max: number }
  | JournalRequest
  | { t: 'exit'; code: number; trap?: string; syncFailed?: SyncFailure }
  | { t: 'error'; message: string };
