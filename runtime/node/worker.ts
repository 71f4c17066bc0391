// Worker-thread entry: opens the store itself, runs one guest against a box,
// flushes the box, reports the exit code. The parent can terminate it at any
// moment (timeout) without harming its own state.
import { parentPort, workerData } from 'node:worker_threads';
import { LayerboxError, errnoOf } from '../../src/index.js';
import { runGuest } from './guest.js';
import { openStore } from './store.js';
import type { WorkerRequest, WorkerMessage } from './run.js';

const req = workerData as WorkerRequest;
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

async function main(): Promise<void> {
  const store = await openStore(req.store, { cacheBytes: req.cacheBytes });
  const r = await runGuest(req, store, (kind, data) => post({ kind, data }));
  await store.backend.close();
  post({ kind: 'exit', exitCode: r.exitCode, trap: r.trap });
}

main().catch((e: unknown) => post({ kind: 'error', message: (e as Error)?.message ?? String(e), name: (e as Error)?.name ?? 'Error', errno: errnoOf(e), code: e instanceof LayerboxError ? e.code : undefined }));
