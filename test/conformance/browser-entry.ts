/**
 * The browser side of test/browser-conformance.test.ts, bundled by that test
 * (esbuild, esm, platform browser) into test/.cache/conformance.js and loaded
 * by test/browser/pages/conformance.html. It puts on `window`:
 *
 * - `runConformance(only?)`: runs the backend conformance suite against REAL
 *   IndexedDB stores (a fresh database per case; the page's own `indexedDB`,
 *   `navigator.locks` and `navigator.storage`) and resolves to the results;
 * - `openIdbBackend`, for tests that drive stores from several tabs;
 * - `ready = true` once loaded.
 */
import { openIdbBackend } from '../../runtime/browser/idb-backend.js';
import { type CaseResult, backendSuite, makeAsserts, runBackendSuite } from './backend-suite.js';

export interface ConformanceWindow {
  runConformance(only?: string[]): Promise<CaseResult[]>;
  conformanceCases: string[];
  openIdbBackend: typeof openIdbBackend;
  ready: boolean;
}

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let opened = 0;

const w = window as unknown as ConformanceWindow;
w.runConformance = (only) =>
  runBackendSuite((caseName) => () => openIdbBackend(`conformance-${run}-${++opened}-${caseName.replace(/[^a-z0-9]+/gi, '-')}`), makeAsserts(), only);
w.conformanceCases = backendSuite.map((c) => c.name);
w.openIdbBackend = openIdbBackend;
w.ready = true;
