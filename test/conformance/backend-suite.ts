/**
 * The store backend conformance suite: what every `Backend` must do, as plain
 * async functions over a `make` that opens a fresh, empty backend and a tiny
 * assertion object. It runs under vitest (test/backend.test.ts: memory, dir,
 * IndexedDB over fake-indexeddb) and in real Chromium
 * (test/browser-conformance.test.ts: IndexedDB), so it must stay free of
 * vitest and of Node APIs: it is bundled for the browser.
 */
import { type Digest, digestOf } from '../../src/digest.js';
import { LayerboxError } from '../../src/errno.js';
import { type Backend, type RefsDoc, emptyRefs } from '../../src/store/backend.js';
import type { Asserts } from './asserts.js';

export { type Asserts, AssertionError, deepEqual, makeAsserts } from './asserts.js';

export type MakeBackend = () => Promise<Backend>;

export interface BackendCase {
  name: string;
  run(make: MakeBackend, t: Asserts): Promise<void>;
}

const enc = new TextEncoder();
const blob = (s: string) => { const data = enc.encode(s); return { digest: digestOf(data), data }; };
const byDigest = (p: { digest: string }, q: { digest: string }) => p.digest.localeCompare(q.digest);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const backendSuite: BackendCase[] = [
  {
    name: 'round-trips put / get / has',
    async run(make, t) {
      const b = await make();
      const x = blob('hello'), y = blob('world'), empty = blob('');
      t.eq(b.hasBlob(x.digest), false, 'hasBlob before the put');
      await b.putBlobs([x, y, empty]);
      for (const [label, v] of [['hello', x], ['world', y], ['empty', empty]] as const) {
        t.eq(b.hasBlob(v.digest), true, `hasBlob(${label})`);
        t.eq(await b.getBlob(v.digest), v.data, `getBlob(${label})`);
        t.eq(b.readBlobSync(v.digest), v.data, `readBlobSync(${label})`);
      }
      const missing = blob('nope').digest;
      t.throws(() => b.readBlobSync(missing), missing);
      const err = await t.rejects(b.getBlob(missing), missing);
      t.ok(err instanceof LayerboxError, 'getBlob of a missing blob rejects with a LayerboxError');
      t.eq((await b.listBlobs()).sort(byDigest), [x, y, empty].map((v) => ({ digest: v.digest, size: v.data.length })).sort(byDigest), 'listBlobs');
      t.eq(await b.verify(), [], 'verify');
      await b.close();
    },
  },
  {
    name: 'stores a blob once however often it is put',
    async run(make, t) {
      const b = await make();
      const x = blob('same bytes');
      await b.putBlobs([x, x]);
      await b.putBlobs([x]);
      const s = await b.stats();
      t.eq(s.blobs, 1, 'stats().blobs');
      t.eq(s.bytes, x.data.length, 'stats().bytes');
      await b.close();
    },
  },
  {
    name: 'round-trips refs and isolates them from callers',
    async run(make, t) {
      const b = await make();
      t.eq(await b.readRefs(), emptyRefs(), 'refs of a new store');
      const d = blob('image').digest;
      const expected = (): RefsDoc => ({ tags: { 'base:latest': d }, boxes: { dev: { image: d, upper: null, created: '2024-01-01T00:00:00Z' } } });
      const refs = expected();
      await b.writeRefs(refs);
      refs.tags['other:x'] = d; // mutating what we wrote...
      const got = await b.readRefs();
      t.eq(got, expected(), 'refs read back (after the caller changed the written object)');
      got.tags['evil:x'] = d; // ...or what we read must not change the store
      got.boxes.dev!.upper = d;
      t.eq(await b.readRefs(), expected(), 'refs read again (after the caller changed the read object)');
      await b.close();
    },
  },
  {
    name: 'deleteBlobs keeps live blobs and frees dead ones',
    async run(make, t) {
      const b = await make();
      const live = [blob('live 1'), blob('live 2')], dead = [blob('dead 1'), blob('dead 22')];
      await b.putBlobs([live[0]!, dead[0]!]);
      await b.putBlobs([live[1]!, dead[1]!]);
      const keep = new Set<Digest>(live.map((v) => v.digest));
      const freed = await b.lock(() => b.deleteBlobs((d) => keep.has(d)));
      t.eq(freed, { blobs: 2, bytes: dead[0]!.data.length + dead[1]!.data.length }, 'deleteBlobs result');
      for (const v of live) t.eq(b.readBlobSync(v.digest), v.data, 'readBlobSync of a live blob');
      for (const v of dead) {
        t.eq(b.hasBlob(v.digest), false, 'hasBlob of a deleted blob');
        t.throws(() => b.readBlobSync(v.digest), v.digest);
      }
      t.eq((await b.stats()).blobs, 2, 'stats().blobs after the delete');
      t.eq(await b.verify(), [], 'verify');
      await b.close();
    },
  },
  {
    name: 'lock serialises concurrent critical sections',
    async run(make, t) {
      const b = await make();
      const log: string[] = [];
      const section = (id: string) => b.lock(async () => {
        log.push(`${id} in`);
        for (let i = 0; i < 5; i++) await sleep(2);
        log.push(`${id} out`);
        return id;
      });
      const failing = b.lock(async () => { throw new Error('boom'); });
      t.eq(await Promise.all([section('a'), section('b'), failing.catch((e: Error) => e.message), section('c')]), ['a', 'b', 'boom', 'c'], 'lock results');
      t.eq(log, ['a in', 'a out', 'b in', 'b out', 'c in', 'c out'], 'order of the critical sections');
      await b.close();
    },
  },
];

export interface CaseResult {
  name: string;
  ok: boolean;
  /** The failure: message and stack. */
  error?: string;
  ms: number;
}

/** Runs every case (or those named) with a fresh `make` per case; never throws. For hosts without a test runner (the browser page). */
export async function runBackendSuite(makeFor: (caseName: string) => MakeBackend, t: Asserts, only?: string[]): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of backendSuite) {
    if (only && !only.includes(c.name)) continue;
    const t0 = Date.now();
    try {
      await c.run(makeFor(c.name), t);
      out.push({ name: c.name, ok: true, ms: Date.now() - t0 });
    } catch (e) {
      const err = e as { message?: unknown; stack?: unknown };
      const text = typeof err?.stack === 'string' ? err.stack : typeof err?.message === 'string' ? err.message : String(e);
      out.push({ name: c.name, ok: false, error: text, ms: Date.now() - t0 });
    }
  }
  return out;
}
