import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryStore } from '../src/index.js';
import { RefFs, linkGroups } from './model/ref-fs.js';
import { type Op, SKELETON, apply, importRef, opArb, view } from './model/overlay-ops.js';

/** Operations with syncs, reopens and flushes between them. */
const step = fc.oneof(
  { arbitrary: opArb.map((o) => ({ kind: 'op' as const, o })), weight: 10 },
  { arbitrary: fc.constant({ kind: 'sync' as const }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'reopen' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'flush' as const }), weight: 1 },
);

describe('box journal (property)', () => {
  it('after every sync, a box opened from the store (snapshot + journal) sees what the running box sees, spills and compactions included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), fc.array(step, { minLength: 1, maxLength: 60 }), fc.constantFrom(8, 64, 1 << 20), async (base, steps, cacheBytes) => {
        // Tiny chunks, a tiny cache and a tiny compaction threshold: spills and compactions happen all the time.
        const store = memoryStore({ chunkSize: 8, cacheBytes, journalCompactBytes: 256 });
        const ref = new RefFs();
        for (const o of [...SKELETON, ...base]) apply(ref, o);
        await importRef(store, ref, 'img');
        let box = await store.createBox('b', { image: 'img' });
        let synced = linkGroups(ref.view());
        // The states since the last sync: after a crash the box is in one of them (a spill may store more than was synced, never a state that did not exist).
        let since = [JSON.stringify(synced)];
        for (const s of steps) {
          if (s.kind === 'op') {
            // A whole-file write is two calls for a guest (open with O_TRUNC, then write): a crash may fall between them.
            const calls: Op[] = s.o.op === 'writeFile' ? [{ ...s.o, data: [] }, { op: 'pwrite', path: s.o.path, offset: 0, data: s.o.data }] : [s.o];
            for (const o of calls) {
              expect([o, apply(box.fs, o)]).toEqual([o, apply(ref, o)]);
              since.push(JSON.stringify(linkGroups(ref.view())));
            }
            continue;
          }
          if (s.kind === 'sync') box.fs.sync();
          else await box.flush();
          synced = linkGroups(ref.view());
          since = [JSON.stringify(synced)];
          // Another opener of the box sees exactly what was synced.
          const other = await store.openBox('b');
          expect(linkGroups(view(other.fs))).toEqual(synced);
          if (s.kind === 'reopen') box = other;
        }
        expect(linkGroups(view(box.fs))).toEqual(linkGroups(ref.view()));
        // A crash now loses at most what was not synced: the box shows the state after one of the operations since the last sync.
        const after = await store.openBox('b');
        expect(since).toContain(JSON.stringify(linkGroups(view(after.fs))));
        // The journal folds into the store; fsck finds nothing wrong.
        await box.flush();
        const folded = await store.openBox('b');
        expect(linkGroups(view(folded.fs))).toEqual(linkGroups(ref.view()));
        expect((await store.fsck()).problems).toEqual([]);
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 200), ...(process.env.PROPERTY_SEED ? { seed: Number(process.env.PROPERTY_SEED) } : {}) },
    );
  });
});
