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

describe('box journal on a directory store', () => {
  it('a checkpoint that fails after the journal became a pack leaves both whole: later syncs, a retry and fsck all hold', async () => {
    const { openStore } = await import('../runtime/node/index.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'lb-journal-'));
    try {
      const store = await openStore(join(dir, 's'));
      store.runner = undefined;
      await store.importFiles([{ path: 'etc/motd', data: 'hi\n' }], { tag: 'base' });
      const box = await store.createBox('b', { image: 'base' });
      const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 255);
      box.fs.writeFile('/big', big);
      box.fs.sync();
      // The refs write fails once: the journal has already been sealed as a pack by then.
      const backend = store.backend as { writeRefs: (r: unknown) => Promise<void> };
      const real = backend.writeRefs.bind(backend);
      backend.writeRefs = async () => {
        backend.writeRefs = real;
        throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      };
      await expect(box.flush()).rejects.toMatchObject({ code: 'QUOTA' });
      // The box goes on: more writes and syncs land in a journal of their own, not in the pack.
      box.fs.writeFile('/more', 'after the failure\n');
      box.fs.sync();
      expect((await store.fsck()).problems).toEqual([]);
      await box.flush();
      const again = await (await openStore(join(dir, 's'))).openBox('b');
      expect(Buffer.from(again.fs.readFile('/big')).equals(Buffer.from(big))).toBe(true);
      expect(new TextDecoder().decode(again.fs.readFile('/more'))).toBe('after the failure\n');
      expect((await store.fsck()).problems).toEqual([]);
      box.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('unlinked open files', () => {
  it('stay readable through syncs, spills and compactions, and are never made durable', async () => {
    const store = memoryStore({ chunkSize: 8, cacheBytes: 16, journalCompactBytes: 64 });
    await store.importFiles([{ path: 'etc/motd', data: 'hi\n' }], { tag: 'img' });
    const box = await store.createBox('b', { image: 'img' });
    const h = box.fs.open('/tmp-sort', { create: true });
    const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 255);
    h.write(0, bytes(100, 1));
    box.fs.unlink('/tmp-sort');
    box.fs.sync();
    for (let i = 0; i < 20; i++) {
      h.write(i * 50, bytes(50, i));
      box.fs.writeFile(`/f${i}`, bytes(40, i));
      box.fs.sync();
    }
    const expected = new Uint8Array(Math.max(100, 19 * 50 + 50));
    expected.set(bytes(100, 1));
    for (let i = 0; i < 20; i++) expected.set(bytes(50, i), i * 50);
    expect(Array.from(h.read(0, expected.length))).toEqual(Array.from(expected));
    const other = await store.openBox('b');
    expect(other.fs.tryStat('/tmp-sort')).toBeNull();
    expect(Array.from(other.fs.readFile('/f19'))).toEqual(Array.from(bytes(40, 19)));
    await box.flush();
    expect((await store.fsck()).problems).toEqual([]);
  });
});
