// Web Worker entry (bundled on its own as dist/browser-worker.js): runs one
// guest for the page, reading the box through the shared-memory bridge.
import { guestMain } from '../../src/remote/guest.js';
import type { StartMessage } from '../../src/remote/protocol.js';

const scope = self as unknown as { onmessage: ((e: { data: StartMessage }) => void) | null; postMessage(m: unknown): void };
scope.onmessage = (e) => {
  if (e.data?.t === 'start') void guestMain(e.data, scope);
};
