// Scale benchmark: how mount, commit and many boxes behave as images grow.
//
//   node bench/scale.mjs [--quick] [--out FILE]
//
// Prints Markdown tables and writes bench/results/scale.json (--quick: smaller
// sizes for a smoke test; it writes a file only when given --out).
//
// Everything goes through the public library (dist/node.js) over a directory
// store in a temporary directory. Images are built once (not timed); every
// mount measurement then runs in a fresh `node --expose-gc` child process so
// nothing is warm in the JS heap (the OS page cache is warm: the store was
// just written). Memory is measured after `global.gc()` as a delta from a
// baseline taken after the library was loaded and before the store was opened.
//
// `export async function scaleBench(root, { quick })`: `root` is the project
// directory (where dist/ lives); returns the JSON-able result.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, lstatSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const DEFAULT_ROOT = resolve(dirname(SELF), '..');
const MiB = 1024 * 1024;
const REPS = 3;
const FILES_PER_DIR = 100;
const DEPTH = 3;

// ---- image layout ---------------------------------------------------------------

/**
 * A tree like a real one: `usr/lib/dAA/dBB/dCC/fNNNN.txt`, about 100 files
 * per leaf directory, three directory levels whose fan-out grows with the
 * image so every image has the same depth.
 */
export function layout(files) {
  const leaves = Math.ceil(files / FILES_PER_DIR);
  const fan = Math.max(2, Math.ceil(Math.cbrt(leaves) - 1e-9));
  const leafDir = (i) => {
    const parts = [];
    for (let k = 0, x = i; k < DEPTH; k++, x = Math.floor(x / fan)) parts.unshift(`d${String(x % fan).padStart(2, '0')}`);
    return `usr/lib/${parts.join('/')}`;
  };
  const file = (i) => `${leafDir(Math.floor(i / FILES_PER_DIR))}/f${String(i % FILES_PER_DIR).padStart(4, '0')}.txt`;
  return { files, leaves, fan, leafDir, file, deep: file(files - 1) };
}

/** Small, distinct content (one chunk per file), like source files or configs. */
const content = (path, salt = '') => new TextEncoder().encode(`${salt}${path}\n${'x'.repeat(40 + (path.length % 200))}\n`);

// ---- helpers ----------------------------------------------------------------------

/** Sum of file sizes under `dir` (what the store costs on disk, ignoring block rounding). */
function diskBytes(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += diskBytes(p);
    else if (e.isFile()) total += lstatSync(p).size;
  }
  return total;
}

function memNow() {
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

/**
 * Memory delta since `base`. "heap" is heapUsed + external: `external` already
 * includes `arrayBuffers` (Node's memoryUsage documents it as a subset), so it
 * is reported on its own but not added a second time.
 */
function memDelta(base) {
  const m = memNow();
  const d = {};
  for (const k of Object.keys(m)) d[k] = m[k] - base[k];
  d.heap = d.heapUsed + d.external;
  return d;
}

const now = () => performance.now();
const mib = (b) => Math.round((b / MiB) * 100) / 100;
const ms = (x) => Math.round(x * 10) / 10;

function runChild(lib, task) {
  const r = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', JSON.stringify({ lib, ...task })], { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`scale child ${task.kind} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** Best of several runs: the smallest value of each numeric field. */
function best(runs) {
  const out = { ...runs[0] };
  for (const k of Object.keys(out)) if (typeof out[k] === 'number') out[k] = Math.min(...runs.map((r) => r[k]));
  return out;
}

// ---- child tasks (run in a fresh process) ----------------------------------------

const tasks = {
  /** Open the store, open a box over the image, stat and read one deep file. */
  async mount({ lib, store: dir, box: name, path }) {
    const { openStore } = await import(lib);
    const base = memNow();
    const t0 = now();
    const store = await openStore(dir, { create: false });
    const t1 = now();
    // The store's own share (its blob index), measured outside the timed spans.
    const storeMem = memDelta(base);
    const t1b = now();
    const box = await store.openBox(name);
    const t2 = now();
    const st = box.fs.stat('/' + path);
    const data = box.fs.readFile('/' + path);
    const t3 = now();
    if (st.size !== data.length || st.type !== 'file') throw new Error(`unexpected stat of ${path}`);
    globalThis.keep = { store, box };
    const m = memDelta(base);
    await store.backend.close();
    return { ms: t1 - t0 + (t3 - t1b), storeMs: t1 - t0, boxMs: t2 - t1b, accessMs: t3 - t2, ...m, storeHeap: storeMem.heap, boxHeap: m.heap - storeMem.heap };
  },

  /** Per change count: a fresh box over the image, N writes, flush, then a timed commit. */
  async commit({ lib, store: dir, image, files, changes, reps }) {
    const { openStore } = await import(lib);
    const L = layout(files);
    const store = await openStore(dir, { create: false });
    const rows = [];
    for (const n of changes) {
      const runs = [];
      for (let rep = 0; rep < reps; rep++) {
        const name = `commit-${n}-${rep}`;
        const box = await store.createBox(name, { image });
        // Half modifications, half new files beside them, in the same directories whatever
        // the image's size (the first files of the tree, ~100 per directory), so images of
        // different sizes see the same change set (an image smaller than n/2 files cannot:
        // the rest are new files).
        const mods = Math.min(Math.ceil(n / 2), files);
        const salt = `rep ${rep} `;
        const t0 = now();
        for (let i = 0; i < mods; i++) {
          const p = L.file(i);
          box.fs.writeFile('/' + p, content(p, salt));
        }
        for (let i = 0; i < n - mods; i++) {
          const p = `${L.leafDir(Math.floor(i / FILES_PER_DIR) % L.leaves)}/new-${rep}-${i}.txt`;
          box.fs.writeFile('/' + p, content(p, salt));
        }
        const t1 = now();
        const before = diskBytes(dir);
        await box.flush();
        const t2 = now();
        const flushed = diskBytes(dir);
        await box.commit({ tag: `commit-${n}-${rep}:latest` });
        const t3 = now();
        const after = diskBytes(dir);
        runs.push({ ms: t3 - t2, bytes: after - flushed, writeMs: t1 - t0, flushMs: t2 - t1, flushBytes: flushed - before });
      }
      rows.push({ changes: n, ...best(runs) });
    }
    await store.backend.close();
    return rows;
  },

  /**
   * Memory with the store open, one box, then `count` boxes over the same image.
   * Each box stats and reads 4 files, lists a directory and writes one small
   * file: with `spread`, different files and directories per box (so each box
   * also makes the engine load other parts of the shared image); without, the
   * same ones in every box (so an extra box adds only its upper and overlay).
   */
  /** Memory of one box that has looked into every directory of the image (the whole image loaded). */
  async fullImage({ lib, store: dir }) {
    const { openStore } = await import(lib);
    const base = memNow();
    const store = await openStore(dir, { create: false });
    const box = await store.openBox('many-0');
    const walk = (p) => {
      for (const e of box.fs.readdir(p)) {
        const c = `${p === '/' ? '' : p}/${e.name}`;
        box.fs.stat(c);
        if (e.type === 'dir') walk(c);
      }
    };
    walk('/');
    const out = memDelta(base);
    globalThis.keep = { store, box };
    await store.backend.close();
    return out;
  },

  async boxes({ lib, store: dir, files, count, spread }) {
    const { openStore } = await import(lib);
    const L = layout(files);
    const base = memNow();
    const store = await openStore(dir, { create: false });
    const out = [{ boxes: 0, ...memDelta(base) }];
    const boxes = [];
    for (let i = 0; i < count; i++) {
      const box = await store.openBox(`many-${i}`);
      const j = spread ? i : 0;
      for (let k = 0; k < 4; k++) {
        const p = '/' + L.file((j * 7919 + k * 104729) % files);
        box.fs.stat(p);
        box.fs.readFile(p);
      }
      box.fs.readdir('/' + L.leafDir((j * 31) % L.leaves));
      box.fs.writeFile(`/${L.leafDir((j * 13) % L.leaves)}/note-${i}.txt`, `box ${i}\n`);
      boxes.push(box);
      if (i === 0 || i === count - 1) out.push({ boxes: i + 1, ...memDelta(base) });
    }
    globalThis.keep = { store, boxes };
    await store.backend.close();
    return out;
  },
};

// ---- setup (parent, not timed) -------------------------------------------------

async function buildImage(lib, dir, files) {
  const { openStore } = await import(lib);
  const L = layout(files);
  const store = await openStore(dir);
  const t0 = now();
  await store.importLayer(async (b) => {
    for (let i = 0; i < L.leaves; i++) b.addDir(L.leafDir(i));
    for (let i = 0; i < files; i++) {
      const p = L.file(i);
      await b.addFile(p, content(p));
    }
  }, { tag: 'img' });
  const buildMs = now() - t0;
  const m = await store.manifest(await store.resolveImage('img'));
  await store.createBox('mount', { image: 'img' });
  await store.backend.close();
  return { buildMs, tableBytes: m.layers[0].size, entries: m.layers[0].entries };
}

async function createBoxes(lib, dir, count) {
  const { openStore } = await import(lib);
  const store = await openStore(dir);
  for (let i = 0; i < count; i++) await store.createBox(`many-${i}`, { image: 'img' });
  await store.backend.close();
}

// ---- the benchmark ------------------------------------------------------------------

export async function scaleBench(root = DEFAULT_ROOT, { quick = false, log = (s) => process.stderr.write(s + '\n') } = {}) {
  const bundle = join(root, 'dist/node.js');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: build first (node esbuild.config.mjs)`);
  const sizes = quick ? [1_000, 10_000, 20_000] : [1_000, 10_000, 100_000];
  const changes = quick ? [1, 100, 1_000] : [1, 100, 10_000];
  const big = sizes.at(-1), small = sizes[0];
  const boxCount = 10;
  const tmp = mkdtempSync(join(tmpdir(), 'layerbox-scale-'));
  const started = now();
  const notes = [];
  try {
    // Every process of one run loads the same copy of the library, even if dist/ is rebuilt meanwhile.
    const libFile = join(tmp, 'layerbox-node.mjs');
    copyFileSync(bundle, libFile);
    const lib = pathToFileURL(libFile).href;
    const libSha256 = createHash('sha256').update(readFileSync(libFile)).digest('hex').slice(0, 16);
    // Build one store per image size, so opening a store only sees that image's blobs.
    const stores = {};
    const built = {};
    for (const n of sizes) {
      stores[n] = join(tmp, `img-${n}`);
      log(`building ${n}-file image...`);
      built[n] = await buildImage(lib, stores[n], n);
    }

    // a) mount: fresh process per measurement, best of REPS.
    const mount = [];
    for (const n of sizes) {
      log(`mount ${n} files...`);
      const runs = [];
      for (let r = 0; r < REPS; r++) runs.push(runChild(lib, { kind: 'mount', store: stores[n], box: 'mount', path: layout(n).deep }));
      const b = best(runs);
      mount.push({
        files: n, ms: ms(b.ms), heapMiB: mib(b.heap), rssMiB: mib(b.rss),
        storeOpenMs: ms(b.storeMs), boxOpenMs: ms(b.boxMs), firstAccessMs: ms(b.accessMs),
        storeHeapMiB: mib(b.storeHeap), boxHeapMiB: mib(b.boxHeap),
        heapUsedMiB: mib(b.heapUsed), externalMiB: mib(b.external), arrayBuffersMiB: mib(b.arrayBuffers),
        tableBytes: built[n].tableBytes, storeBytes: diskBytes(stores[n]),
      });
    }

    // c) many boxes over the biggest image.
    log(`${boxCount} boxes over the ${big}-file image...`);
    await createBoxes(lib, stores[big], boxCount);
    // A tiny image (one directory of files, same depth) for the cost of an upper alone.
    const tinyFiles = FILES_PER_DIR;
    stores.tiny = join(tmp, 'img-tiny');
    await buildImage(lib, stores.tiny, tinyFiles);
    await createBoxes(lib, stores.tiny, boxCount);
    const boxRuns = (spread, store = stores[big], files = big) => {
      const runs = [];
      for (let r = 0; r < REPS; r++) runs.push(runChild(lib, { kind: 'boxes', store, files, count: boxCount, spread }));
      return runs[0].map((row, i) => best(runs.map((x) => x[i])));
    };
    const fullRuns = [];
    for (let r = 0; r < REPS; r++) fullRuns.push(runChild(lib, { kind: 'fullImage', store: stores[big] }));
    const full = best(fullRuns);
    const spreadRows = boxRuns(true);
    const sameRows = boxRuns(false);
    const tinyRows = boxRuns(false, stores.tiny, tinyFiles);
    const at = (rows, k) => rows.find((r) => r.boxes === k);
    const boxes = [
      ...spreadRows.map((r) => ({ boxes: r.boxes, imageFiles: big, touch: 'different files per box', heapMiB: mib(r.heap), rssMiB: mib(r.rss) })),
      ...sameRows.filter((r) => r.boxes > 0).map((r) => ({ boxes: r.boxes, imageFiles: big, touch: 'same files in every box', heapMiB: mib(r.heap), rssMiB: mib(r.rss) })),
      { boxes: 1, imageFiles: big, touch: 'every directory of the image (all of it loaded)', heapMiB: mib(full.heap), rssMiB: mib(full.rss) },
    ];
    // One image + ten uppers: one box over the big image (the image mounted, plus one
    // upper) plus nine more uppers. An upper's cost is measured apart from the big image:
    // what each extra box adds over a tiny image, with the same touches in every box
    // (there the image is negligible and loaded once, so the rest is the box's upper and
    // overlay). If boxes did not share the big image, ten of them would cost far more.
    const perExtra = (rows) => ({ heap: (at(rows, boxCount).heap - at(rows, 1).heap) / (boxCount - 1), rss: (at(rows, boxCount).rss - at(rows, 1).rss) / (boxCount - 1) });
    const perUpper = perExtra(tinyRows);
    const perSame = perExtra(sameRows);
    const perSpread = perExtra(spreadRows);
    const estimate = {
      boxes: boxCount, imageFiles: big,
      heapMiB: mib(at(spreadRows, 1).heap + (boxCount - 1) * perUpper.heap),
      rssMiB: mib(at(spreadRows, 1).rss + (boxCount - 1) * perUpper.rss),
      perUpperHeapMiB: mib(perUpper.heap), perUpperRssMiB: mib(perUpper.rss),
      perExtraBoxSameHeapMiB: mib(perSame.heap), perExtraBoxSameRssMiB: mib(perSame.rss),
      perExtraBoxSpreadHeapMiB: mib(perSpread.heap), perExtraBoxSpreadRssMiB: mib(perSpread.rss),
      wholeImagePlusUppersHeapMiB: mib(full.heap + (boxCount - 1) * perUpper.heap),
      wholeImagePlusUppersRssMiB: mib(full.rss + (boxCount - 1) * perUpper.rss),
      method: `memory of 1 box over the ${big}-file image (touching its files) + ${boxCount - 1} x the per-upper cost; per-upper cost = (memory of ${boxCount} boxes - memory of 1 box) / ${boxCount - 1} over a ${tinyFiles}-file image of the same depth, every box making the same touches (stat and read 4 files, list 1 directory, write 1 small file), so the image there is negligible and what is left is a box's upper and overlay`,
    };

    // b) commit: over the biggest and the smallest image.
    const commit = [];
    for (const n of [big, small]) {
      log(`commits over the ${n}-file image...`);
      for (const r of runChild(lib, { kind: 'commit', store: stores[n], image: 'img', files: n, changes, reps: REPS })) {
        commit.push({ imageFiles: n, changes: r.changes, ms: ms(r.ms), bytes: r.bytes, flushMs: ms(r.flushMs), flushBytes: r.flushBytes, writeMs: ms(r.writeMs) });
      }
    }
    commit.sort((a, b) => a.imageFiles - b.imageFiles || a.changes - b.changes);

    // Notes: plain observations computed from the numbers, no targets asserted.
    const growth = (rows, key) => rows.at(-1)[key] / rows[0][key];
    notes.push(`Best of ${REPS} for every number (each field's minimum on its own). Mount: a fresh \`node --expose-gc\` process per run; time = openStore + openBox + stat and read of one file ${DEPTH + 2} directories deep; memory = delta after global.gc() from a baseline taken after the library was loaded.`);
    notes.push('heapMiB = heapUsed + external. Node counts arrayBuffers inside external, so it is not added again (the JSON keeps heapUsed, external and arrayBuffers separately for the mount rows).');
    notes.push(`Images: ~${FILES_PER_DIR} files per leaf directory, ${DEPTH} directory levels under usr/lib, one small distinct file (one chunk) each; one store per image size. Build (not timed in the tables): ${sizes.map((n) => `${n} files ${ms(built[n].buildMs)} ms`).join(', ')}.`);
    notes.push(`Mount ${sizes[0]} -> ${big} files (${big / sizes[0]}x): time x${growth(mount, 'ms').toFixed(1)}, heap x${growth(mount, 'heapMiB').toFixed(1)}. Split: opening the store ${mount[0].storeOpenMs} -> ${mount.at(-1).storeOpenMs} ms and ${mount[0].storeHeapMiB} -> ${mount.at(-1).storeHeapMiB} MiB (${Math.round((mount.at(-1).storeHeapMiB * MiB) / big)} B per file of the ${big}-file image, which has one chunk per file); opening the box and the first access ${ms(mount[0].boxOpenMs + mount[0].firstAccessMs)} -> ${ms(mount.at(-1).boxOpenMs + mount.at(-1).firstAccessMs)} ms and ${mount[0].boxHeapMiB} -> ${mount.at(-1).boxHeapMiB} MiB; the layer table on disk is ${mib(mount[0].tableBytes)} -> ${mib(mount.at(-1).tableBytes)} MiB. Times exclude the garbage collection run between the two parts to measure them.`);
    const c = (img, n) => commit.find((r) => r.imageFiles === img && r.changes === n);
    for (const n of changes) notes.push(`Commit of ${n} change(s): ${c(small, n).ms} ms / ${c(small, n).bytes} B over ${small} files vs ${c(big, n).ms} ms / ${c(big, n).bytes} B over ${big} files.`);
    notes.push(`Changes: half modifications of existing files, half new files beside them, in the first directories of the tree (about ${FILES_PER_DIR} per directory), the same change set over every image${Math.ceil(changes.at(-1) / 2) > small ? `; over the ${small}-file image, ${changes.at(-1)} changes are ${small} modifications and ${changes.at(-1) - small} new files` : ''}.`);
    notes.push(`Commit: the box is flushed first (not timed), so the commit's bytes are the new layer table, image manifest and refs; the changed files' chunks were written by the flush (flushBytes). ms is box.commit() alone.`);
    notes.push(`Boxes: ${boxCount} boxes over the ${big}-file image: ${mib(at(spreadRows, boxCount).heap)} MiB heap+external touching different files per box, ${mib(at(sameRows, boxCount).heap)} MiB touching the same files, vs ${estimate.heapMiB} MiB estimated for one image + ${boxCount} uppers (${mib(at(spreadRows, 1).heap)} MiB for 1 box + ${boxCount - 1} x ${estimate.perUpperHeapMiB} MiB per upper). Each extra box added ${estimate.perExtraBoxSameHeapMiB} MiB when it touched the same files as the others, ${estimate.perExtraBoxSpreadHeapMiB} MiB when it touched other files: the difference is what the engine keeps of the shared image's lazily loaded parts, which grows with how much of the image the boxes have touched, not with the number of boxes. The 0-box row is the store opened alone. Estimate: ${estimate.method}. Bound: one box that has looked into every directory of the image holds all of it (${mib(full.heap)} MiB); ten boxes stay under that plus ten uppers (${estimate.wholeImagePlusUppersHeapMiB} MiB) however they spread their work, since they share one mounted image.`);
    notes.push('RSS deltas are coarse (the allocator keeps freed pages); a background load on the machine affects the times.');

    const result = {
      date: new Date().toISOString(),
      node: process.version,
      quick,
      libSha256,
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10, os: `${platform()} ${release()}` },
      mount,
      commit,
      boxes,
      boxesEstimate: estimate,
      notes,
      seconds: Math.round((now() - started) / 100) / 10,
    };
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- Markdown ------------------------------------------------------------------

export function scaleMarkdown(s) {
  const out = [];
  out.push('### Mount (open store + open box + first stat/read)', '');
  out.push('| files | ms | store open ms | box open ms | first access ms | heap+external MiB | of it: store MiB | of it: box MiB | RSS MiB | layer table MiB |');
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const v = (x) => (x === undefined ? '' : x);
  for (const r of s.mount) out.push(`| ${r.files} | ${r.ms} | ${v(r.storeOpenMs)} | ${v(r.boxOpenMs)} | ${v(r.firstAccessMs)} | ${r.heapMiB} | ${v(r.storeHeapMiB)} | ${v(r.boxHeapMiB)} | ${r.rssMiB} | ${r.tableBytes !== undefined ? mib(r.tableBytes) : ''} |`);
  out.push('', '### Commit (after a flush)', '');
  out.push('| image files | changes | commit ms | commit bytes | flush ms | flush bytes |');
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of s.commit) out.push(`| ${r.imageFiles} | ${r.changes} | ${r.ms} | ${r.bytes} | ${r.flushMs ?? ''} | ${r.flushBytes ?? ''} |`);
  out.push('', '### Boxes over one image', '');
  out.push('| boxes | image files | touches | heap+external MiB | RSS MiB |');
  out.push('| ---: | ---: | --- | ---: | ---: |');
  for (const r of s.boxes) out.push(`| ${r.boxes} | ${v(r.imageFiles)} | ${r.boxes === 0 ? 'store open, no box' : v(r.touch)} | ${r.heapMiB} | ${r.rssMiB} |`);
  if (s.boxesEstimate) {
    const e = s.boxesEstimate;
    out.push(`| ${e.boxes} | ${e.imageFiles} | estimate: one image + ${e.boxes} uppers | ${e.heapMiB} | ${e.rssMiB} |`);
    if (e.wholeImagePlusUppersHeapMiB !== undefined) out.push(`| ${e.boxes} | ${e.imageFiles} | bound: the whole image loaded + ${e.boxes} uppers | ${e.wholeImagePlusUppersHeapMiB} | ${e.wholeImagePlusUppersRssMiB} |`);
  }
  return out.join('\n');
}

// ---- entry points ----------------------------------------------------------------

const argv = process.argv.slice(2);
if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  if (argv[0] === '--child') {
    const task = JSON.parse(argv[1]);
    const r = await tasks[task.kind](task);
    process.stdout.write(JSON.stringify(r) + '\n');
  } else {
    // --quick: smaller sizes, for a smoke test; prints the tables and writes a file only with --out.
    const quick = argv.includes('--quick');
    const outArg = argv.indexOf('--out');
    const outFile = outArg >= 0 && argv[outArg + 1] ? resolve(argv[outArg + 1]) : quick ? null : join(DEFAULT_ROOT, 'bench/results/scale.json');
    const t0 = now();
    const s = await scaleBench(DEFAULT_ROOT, { quick });
    console.log(scaleMarkdown(s));
    console.log('\nNotes:\n' + s.notes.map((n) => `- ${n}`).join('\n'));
    if (outFile) {
      mkdirSync(dirname(outFile), { recursive: true });
      writeFileSync(outFile, JSON.stringify(s, null, 2) + '\n');
    }
    console.log(`\n${quick ? 'quick ' : ''}scale bench took ${((now() - t0) / 1000).toFixed(1)} s${outFile ? `; wrote ${outFile.startsWith(DEFAULT_ROOT + '/') ? outFile.slice(DEFAULT_ROOT.length + 1) : outFile}` : ''}`);
  }
}
