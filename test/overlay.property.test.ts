import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryStore } from '../src/index.js';
import { RefFs, linkGroups } from './model/ref-fs.js';
import { SKELETON, apply, importRef, opArb, view } from './model/overlay-ops.js';

/** A clock that can be rewound, so replays give identical timestamps. */
function rewindableClock() {
  let t = 1_700_000_000_000_000_000n;
  const clock = () => (t += 1_000n);
  return { clock, set: (v: bigint) => (t = v) };
}

const scenario = fc.record({
  base: fc.array(opArb, { maxLength: 40 }),
  layers: fc.array(fc.array(opArb, { maxLength: 25 }), { minLength: 0, maxLength: 2 }),
  upper: fc.array(opArb, { minLength: 1, maxLength: 30 }),
});

describe('overlay vs reference tree (property)', () => {
  it('random operations over 1-3 random layers give the same view, survive commit and reload, and commit deterministically', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ base, layers, upper }) => {
        const c = rewindableClock();
        const store = memoryStore({ chunkSize: 8, clock: c.clock });
        const ref = new RefFs();
        for (const o of [...SKELETON, ...base]) apply(ref, o);
        await importRef(store, ref, 'img:0');
        const box = await store.createBox('b', { image: 'img:0' });
        expect(linkGroups(view(box.fs))).toEqual(linkGroups(ref.view()));
        for (let i = 0; i < layers.length; i++) {
          for (const o of layers[i]!) expect([o, apply(box.fs, o)]).toEqual([o, apply(ref, o)]);
          await box.commit({ tag: `img:${i + 1}` });
          expect(linkGroups(view(box.fs))).toEqual(linkGroups(ref.view()));
        }
        const top = `img:${layers.length}`;
        const t0 = 1_800_000_000_000_000_000n;
        c.set(t0);
        for (const o of upper) {
          expect([o, apply(box.fs, o)]).toEqual([o, apply(ref, o)]);
          expect(linkGroups(view(box.fs))).toEqual(linkGroups(ref.view()));
        }
        const expected = linkGroups(ref.view());
        // The upper survives a flush and a reopen from the store.
        await box.flush();
        const reopened = await store.openBox('b');
        expect(linkGroups(view(reopened.fs))).toEqual(expected);
        // Commit, reopen: unchanged; a box on the committed image sees the same.
        const img = await reopened.commit({ tag: 'img:final' });
        expect(linkGroups(view(reopened.fs))).toEqual(expected);
        const fresh = await store.createBox('f', { image: img });
        expect(linkGroups(view(fresh.fs))).toEqual(expected);
        // The same operations over the same image give the same layer digest.
        const layerA = (await store.inspectImage(img)).layers.at(-1)!.digest;
        const replay = await store.createBox('r', { image: top });
        c.set(t0);
        for (const o of upper) apply(replay.fs, o);
        const img2 = await replay.commit({ tag: 'img:replay' });
        expect((await store.inspectImage(img2)).layers.at(-1)!.digest).toBe(layerA);
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 300), ...(process.env.PROPERTY_SEED ? { seed: Number(process.env.PROPERTY_SEED) } : {}) },
    );
  });
});
