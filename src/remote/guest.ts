import { Box } from '../box.js';
import { runModule } from '../run.js';
import { Store } from '../store/store.js';
import { BlobBridge, BridgeBackend, type Port } from './bridge.js';
import type { GuestMessage, Snapshot, StartMessage } from './protocol.js';
import { stdinPuller } from './stdin.js';

/**
 * The worker side of a remote run: mounts the box through the blob bridge
 * (table reads and lazy chunk reads block on Atomics), runs the program, and
 * sends back its output as it is written and its changes as a snapshot.
 */
export async function guestMain(msg: StartMessage, port: Port): Promise<void> {
  const post = (m: GuestMessage) => port.postMessage(m);
  try {
    const store = new Store(new BridgeBackend(new BlobBridge(msg.sab, port)), { chunkSize: msg.chunkSize });
    const box = msg.name === null ? await Box.ephemeral(store, msg.record.image) : await Box.open(store, msg.name, msg.record);
    const snapshot = (): Snapshot | null => {
      if (msg.name === null) return null;
      box.fs.sync();
      const journal = box.journalBytes();
      return journal ? { expect: box.state, journal } : null;
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
    post({ t: 'exit', code: r.exitCode, trap: r.trap, snapshot: snapshot() });
  } catch (e) {
    post({ t: 'error', message: (e as Error)?.message ?? String(e) });
  }
}
