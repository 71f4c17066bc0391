import { Box } from '../box.js';
import { runModule } from '../run.js';
import { Store } from '../store/store.js';
import { BlobBridge, BridgeBackend, type Port } from './bridge.js';
import { errnoOf } from '../errno.js';
import type { GuestMessage, StartMessage, SyncFailure } from './protocol.js';
import { stdinPuller } from './stdin.js';

/**
 * The worker side of a remote run: mounts the box through the blob bridge
 * (table reads and lazy chunk reads block on Atomics), runs the program, and
 * sends back its output as it is written. Its changes go to the box's journal
 * in the store owner's storage through the bridge (fsync returns once they
 * are durable there); at exit it syncs what is left, and the owner folds
 * the journal into the store.
 */
export async function guestMain(msg: StartMessage, port: Port): Promise<void> {
  const post = (m: GuestMessage) => port.postMessage(m);
  try {
    const store = new Store(new BridgeBackend(new BlobBridge(msg.sab, port)), { chunkSize: msg.chunkSize, cacheBytes: msg.cacheBytes, journalCompactBytes: msg.journalCompactBytes });
    const box = msg.name === null ? await Box.ephemeral(store, msg.record.image) : await Box.open(store, msg.name, msg.record);
    const finalSync = (): SyncFailure | undefined => {
      try {
        if (msg.name !== null) box.fs.sync();
      } catch (e) {
        return { message: (e as Error)?.message ?? String(e), errno: errnoOf(e) };
      } finally {
        try { box.close(); } catch { /* the owner closes what is left */ }
      }
      return undefined;
    };
    const module = msg.wasm instanceof Uint8Array ? await WebAssembly.compile(msg.wasm) : msg.wasm;
    const r = runModule(module, [{ guest: '/', fs: box.fs }], {
      args: msg.args,
      env: msg.env,
      stdin: msg.stdinSab ? stdinPuller(msg.stdinSab, port) : msg.stdin,
      tty: msg.tty,
      stdout: (data) => post({ t: 'out', fd: 1, data: data.slice() }),
      stderr: (data) => post({ t: 'out', fd: 2, data: data.slice() }),
    });
    post({ t: 'exit', code: r.exitCode, trap: r.trap, syncFailed: finalSync() });
  } catch (e) {
    post({ t: 'error', message: (e as Error)?.message ?? String(e) });
  }
}
