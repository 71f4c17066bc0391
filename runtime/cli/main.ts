import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FsError, LayerboxError, type LayerboxCode, codeOfHostError, describeErrno, errnoOf, shortDigest } from '../../src/index.js';
import { runInProcess } from '../node/run-here.js';
import { type WorkerRequest, runInWorker } from '../node/run.js';
import { type NodeStore, openStore } from '../node/store.js';
// What only some commands need (registries, OCI archives, host copies, the playground server) loads when they run.
const oci = () => import('../node/oci.js');
import { Progress } from './progress.js';

const USAGE = `usage: layerbox [--store DIR] COMMAND [ARGS]

Images
  image import DIR|TAR --tag NAME[:TAG] [-m MSG]   import a directory or a tar as a one-layer image
  image ls [--json]                               list tagged images
  image inspect IMAGE                             show an image's manifest (JSON)
  image history IMAGE [--json]                    list an image's layers, newest first
  image tag IMAGE NAME[:TAG]                      add a tag
  image squash IMAGE --tag NAME[:TAG]             flatten an image into one layer
  image rm IMAGE                                  remove a tag (or every tag of a digest)
Boxes
  box create BOX --image IMAGE [--max-upper-bytes SIZE] [--max-files N] [--max-file-bytes SIZE]
                                                  a new box over an image; the limits cap what its upper may hold
                                                  (changed bytes: ENOSPC; added entries: EDQUOT for the guest)
                                                  and the size of one file (default 1T; past it: EFBIG)
  box ls [--json] | box rm BOX | box reset BOX | box fork BOX NEW
  cp SRC DEST                                     copy between host and box (BOX:/path)
  ls BOX:/path [--json]                           list a directory of a box
  cat BOX:/path                                   print a file of a box
  diff BOX [--json]                               A|C|D PATH lines against the box's image
  commit BOX --tag NAME[:TAG] [-m MSG]            the box's changes as a new image layer
Running
  run [--box BOX | --image IMAGE] [--dir HOST::GUEST]... [--env K=V]... [--timeout SEC] [--memory SIZE]
      [--write-cache SIZE] PROGRAM [-- ARGS...]
                                                  run a WASI program (a host .wasm or BOX:/path) with the box as /;
                                                  --image alone gives a box that is thrown away; exits with the
                                                  guest's exit code (a trap: 134; a timeout: 124); --memory 64M
                                                  caps the guest's memory (malloc fails past it); fsync in the
                                                  guest is durable; written data past --write-cache (default 64M)
                                                  moves from memory to the box's journal on disk
Sharing
  export IMAGE... [--box BOX]... -o FILE [--format layerbox|oci|docker]
                                                  images (with tags) and boxes as one file: a layerbox bundle
                                                  (default), an OCI image layout tar, or a docker save archive
                                                  (oci and docker: images only)
  import FILE [--tag NAME[:TAG]]                  open such a file, an OCI layout (directory or tar) or a docker
                                                  save archive (or any tar: a one-layer image, with --tag)
  push IMAGE HOST[:PORT]/REPO[:TAG]               push an image to an OCI registry (plain http for 127.0.0.1 and
                                                  localhost, else https); blobs it has are skipped
  pull HOST[:PORT]/REPO[:TAG] [--tag NAME[:TAG]]  pull an image from an OCI registry, tagged REPO:TAG (or --tag);
                                                  an image pushed by layerbox keeps its digest
    push and pull: [--connect-timeout SEC] (default 30) [--idle-timeout SEC] (default 60): give up on a
                                                  registry that does not connect, or sends nothing for that long
Store
  gc                                              remove blobs no tag or box uses
  fsck [--json]                                   verify every blob and reference
Browser
  playground [--port N]                           serve the browser playground on 127.0.0.1 (default port 8080;
                                                  0: a free one) until interrupted

The store is --store DIR, else $LAYERBOX_STORE, else ./.layerbox`;

class UsageError extends Error {}

const out = (s: string): void => void process.stdout.write(s + "\n");
const json = (v: unknown) => out(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2));

function table(rows: string[][]): void {
  if (!rows.length) return;
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd());
}

function human(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n}${units[i]}`;
}

function ago(iso: string): string {
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!(s >= 0)) return iso;
  if (s < 60) return `${Math.round(s)} seconds ago`;
  if (s < 3600) return `${Math.round(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.round(s / 3600)} hours ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/** `BOX:/path` -> [box, path], or null for a host path. */
function boxPath(arg: string): [string, string] | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*):(\/.*)?$/.exec(arg);
  if (!m) return null;
  return [m[1]!, m[2] ?? '/'];
}

function needBoxPath(arg: string | undefined): [string, string] {
  const bp = arg ? boxPath(arg) : null;
  if (!bp) throw new UsageError(`expected BOX:/path, got ${arg ?? 'nothing'}`);
  return bp;
}

function args(argv: string[], options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>, count: [number, number]) {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, ...options }, allowPositionals: true, strict: true });
  if (positionals.length < count[0] || positionals.length > count[1]) throw new UsageError(`wrong number of arguments`);
  return { v: values as Record<string, string | boolean | undefined>, p: positionals };
}

const NET_FLAGS = { 'connect-timeout': { type: 'string' }, 'idle-timeout': { type: 'string' } } as const;

/** --connect-timeout and --idle-timeout, in seconds. */
function netOptions(v: Record<string, string | boolean | undefined>): { connectTimeout?: number; idleTimeout?: number } {
  const sec = (flag: string): number | undefined => {
    const s = v[flag] as string | undefined;
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!/^\d+(\.\d+)?$/.test(s) || !(n > 0)) throw new UsageError(`--${flag} takes a positive number of seconds, got ${s}`);
    return n;
  };
  return { connectTimeout: sec('connect-timeout'), idleTimeout: sec('idle-timeout') };
}

async function imageCmd(store: NodeStore, sub: string | undefined, argv: string[]): Promise<void> {
  switch (sub) {
    case 'import': {
      const { v, p } = args(argv, { tag: { type: 'string', short: 't' }, message: { type: 'string', short: 'm' } }, [1, 1]);
      const src = p[0]!;
      const st = await stat(src).catch(() => null);
      if (!st) throw new LayerboxError(`no such file or directory: ${src}`, { code: 'NOT_FOUND' });
      const progress = new Progress('importing');
      const opts = { tag: v.tag as string | undefined, comment: v.message as string | undefined, onProgress: (x: { files: number; bytes: number }) => progress.update(`${x.files} files, ${human(x.bytes)}`), onSkip: (path: string, why: string) => process.stderr.write(`layerbox: skipped ${path}: ${why}\n`) };
      const d = st.isDirectory() ? await store.importDirectory(src, opts) : await store.importTar(src, opts);
      progress.done();
      out(d);
      return;
    }
    case 'ls': {
      const { v } = args(argv, {}, [0, 0]);
      const imgs = await store.listImages();
      if (v.json) return json(imgs);
      const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'LAYERS', 'SIZE']];
      for (const i of imgs) for (const t of i.tags) {
        const [name, tag] = [t.slice(0, t.lastIndexOf(':')), t.slice(t.lastIndexOf(':') + 1)];
        rows.push([name, tag, shortDigest(i.digest), ago(i.created), String(i.layers), human(i.size)]);
      }
      return table(rows);
    }
    case 'inspect': {
      const { p } = args(argv, {}, [1, 1]);
      return json(await store.inspectImage(p[0]!));
    }
    case 'history': {
      const { v, p } = args(argv, {}, [1, 1]);
      const h = await store.history(p[0]!);
      if (v.json) return json(h);
      table([['LAYER', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...h.map((r) => [shortDigest(r.layer), ago(r.created), r.createdBy, human(r.size), r.comment])]);
      return;
    }
    case 'tag': {
      const { p } = args(argv, {}, [2, 2]);
      await store.tag(p[0]!, p[1]!);
      return;
    }
    case 'squash': {
      const { v, p } = args(argv, { tag: { type: 'string', short: 't' } }, [1, 1]);
      out(await store.squash(p[0]!, { tag: v.tag as string | undefined }));
      return;
    }
    case 'rm': {
      const { p } = args(argv, {}, [1, 1]);
      for (const t of await store.removeImage(p[0]!)) out(`Untagged: ${t}`);
      return;
    }
    default:
      throw new UsageError(`unknown image command ${sub ?? ''}`);
  }
}

async function boxCmd(store: NodeStore, sub: string | undefined, argv: string[]): Promise<void> {
  switch (sub) {
    case 'create': {
      const { v, p } = args(argv, { image: { type: 'string', short: 'i' }, 'max-upper-bytes': { type: 'string' }, 'max-files': { type: 'string' }, 'max-file-bytes': { type: 'string' } }, [1, 1]);
      if (!v.image) throw new UsageError('box create needs --image IMAGE');
      const limit = (flag: string): number | undefined => {
        const s = v[flag] as string | undefined;
        if (s === undefined) return undefined;
        if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new UsageError(`--${flag} takes a non-negative integer, got ${s}`);
        return Number(s);
      };
      const maxUpperBytes = v['max-upper-bytes'] === undefined ? undefined : parseSize(v['max-upper-bytes'] as string, '--max-upper-bytes');
      const maxFiles = limit('max-files');
      const maxFileBytes = v['max-file-bytes'] === undefined ? undefined : parseSize(v['max-file-bytes'] as string, '--max-file-bytes');
      const limits = { ...(maxUpperBytes !== undefined ? { maxUpperBytes } : {}), ...(maxFiles !== undefined ? { maxFiles } : {}), ...(maxFileBytes !== undefined ? { maxFileBytes } : {}) };
      await store.createBox(p[0]!, { image: v.image as string, limits: Object.keys(limits).length ? limits : undefined });
      out(p[0]!);
      return;
    }
    case 'ls': {
      const { v } = args(argv, {}, [0, 0]);
      const boxes = await store.listBoxes();
      if (v.json) return json(boxes);
      table([['BOX', 'IMAGE', 'IMAGE ID', 'CHANGED', 'CREATED'], ...boxes.map((b) => [b.name, b.tags[0] ?? '<none>', shortDigest(b.image), b.upper ? 'yes' : 'no', ago(b.created)])]);
      return;
    }
    case 'rm': {
      const { p } = args(argv, {}, [1, 1]);
      await store.withBox(p[0]!, () => store.removeBox(p[0]!));
      return;
    }
    case 'reset': {
      const { p } = args(argv, {}, [1, 1]);
      await store.withBox(p[0]!, () => store.resetBox(p[0]!));
      return;
    }
    case 'fork': {
      const { p } = args(argv, {}, [2, 2]);
      // A fork folds the box's journal first: not while a run is writing it.
      await store.withBox(p[0]!, () => store.forkBox(p[0]!, p[1]!));
      out(p[1]!);
      return;
    }
    default:
      throw new UsageError(`unknown box command ${sub ?? ''}`);
  }
}

/** A byte size: `65536`, `512k`, `64M`, `1G` (also `64MiB`, `64MB`: powers of 1024). */
function parseSize(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  const n = m ? Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase())) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag} takes a size such as 65536, 512k, 64M or 1G, got ${s}`);
  return n;
}

async function runCmd(store: NodeStore, argv: string[]): Promise<void> {
  const { v, p } = args(argv, { box: { type: 'string' }, image: { type: 'string' }, dir: { type: 'string', multiple: true }, env: { type: 'string', short: 'e', multiple: true }, timeout: { type: 'string' }, memory: { type: 'string', short: 'm' }, 'write-cache': { type: 'string' } }, [1, Infinity]);
  if (!!v.box === !!v.image) throw new UsageError('run needs one of --box BOX or --image IMAGE');
  const dirs = ((v.dir as unknown as string[] | undefined) ?? []).map((d) => {
    const i = d.indexOf('::');
    if (i <= 0 || !d.slice(i + 2).startsWith('/')) throw new UsageError(`--dir takes HOST::GUEST with an absolute GUEST path, got ${d}`);
    return { host: d.slice(0, i), guest: d.slice(i + 2) };
  });
  for (const d of dirs) {
    const st = await stat(d.host).catch(() => null);
    if (!st?.isDirectory()) throw new LayerboxError(`--dir: not a directory: ${d.host}`, { code: st ? 'INVALID' : 'NOT_FOUND' });
  }
  const env = (v.env as unknown as string[] | undefined) ?? [];
  for (const e of env) if (!/^[^=]+=/.test(e)) throw new UsageError(`--env takes K=V, got ${e}`);
  const timeout = v.timeout === undefined ? undefined : Number(v.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout takes a number of seconds, got ${v.timeout}`);
  const maxMemoryBytes = v.memory === undefined ? undefined : parseSize(v.memory as string, '--memory');
  const cacheBytes = v['write-cache'] === undefined ? undefined : parseSize(v['write-cache'] as string, '--write-cache');
  const program = p[0]!;
  const bp = boxPath(program);
  if (!bp && !(await stat(program).catch(() => null))?.isFile()) throw new LayerboxError(`no such program: ${program}`, { code: 'NOT_FOUND' });
  if (store.backend.kind !== 'dir') throw new LayerboxError('run needs a directory store', { code: 'UNSUPPORTED' });
  // Check the box or image exists before starting a worker.
  if (v.box) await store.boxRecord(v.box as string);
  else await store.resolveImage(v.image as string);
  const name = (bp ? bp[1] : program).split('/').pop()!;
  const req: WorkerRequest = { store: store.backend.location, box: v.box as string | undefined, image: v.image as string | undefined, program, args: [name, ...p.slice(1)], env, dirs, stdio: 'inherit', stdin: 'inherit', maxMemoryBytes, cacheBytes, lazyFlush: true };
  // With nothing to stop it, the guest runs on this thread: no worker to start. A timeout needs a worker it can terminate.
  const work = () => timeout === undefined
    ? runInProcess(req, cacheBytes === undefined ? store : undefined)
    : runInWorker(req, { timeoutMs: timeout * 1000, onStderr: (b) => process.stderr.write(b) });
  // A box being run is held: another process changing it meanwhile gets a clear error.
  const r = v.box ? await store.withBox(v.box as string, work) : await work();
  process.exitCode = r.exitCode;
}

/** The first `n` bytes of a file. */
async function readHead(path: string, n: number): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const b = new Uint8Array(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

const DEFAULT_PLAYGROUND_PORT = 8080;

/** `layerbox playground`: serves dist/ (the directory this CLI runs from) until SIGINT or SIGTERM. */
async function playgroundCmd(argv: string[]): Promise<void> {
  const { v } = args(argv, { port: { type: 'string', short: 'p' } }, [0, 0]);
  const raw = v.port as string | undefined;
  if (raw !== undefined && !(/^\d{1,5}$/.test(raw) && Number(raw) <= 65535)) throw new UsageError(`--port takes a port number (0-65535; 0 picks a free one), got ${raw}`);
  const port = raw === undefined ? DEFAULT_PLAYGROUND_PORT : Number(raw);
  // The bundled CLI is dist/cli.js: dist/ is next to it.
  const dist = dirname(fileURLToPath(import.meta.url));
  const server = await (await import('../node/playground-server.js')).startPlaygroundServer({ dist, port });
  out(`Playground: ${server.url}`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function main(argv: string[]): Promise<void> {
  let storeDir = process.env.LAYERBOX_STORE || './.layerbox';
  while (argv[0]?.startsWith('--store')) {
    const a = argv.shift()!;
    if (a.includes('=')) storeDir = a.slice(8);
    else {
      const next = argv.shift();
      if (!next) throw new UsageError('--store needs a directory');
      storeDir = next;
    }
  }
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    out(USAGE);
    return;
  }
  // The playground needs no store.
  if (cmd === 'playground') return await playgroundCmd(rest);
  const known = ['image', 'box', 'cp', 'ls', 'cat', 'diff', 'commit', 'gc', 'fsck', 'run', 'export', 'import', 'push', 'pull'];
  if (!known.includes(cmd)) throw new UsageError(`unknown command ${cmd}`);
  const store = await openStore(storeDir);
  try {
    switch (cmd) {
      case 'image':
        return await imageCmd(store, rest[0], rest.slice(1));
      case 'box':
        return await boxCmd(store, rest[0], rest.slice(1));
      case 'cp': {
        const { p } = args(rest, {}, [2, 2]);
        const [src, dst] = [boxPath(p[0]!), boxPath(p[1]!)];
        if (src && dst) throw new UsageError('cp copies between the host and a box, not between two boxes');
        if (!src && !dst) throw new UsageError('cp needs one side as BOX:/path');
        if (dst) {
          await store.withBox(dst[0], async () => {
            const box = await store.openBox(dst[0]);
            await (await import('../node/copy.js')).copyIntoBox(box, p[0]!, dst[1]);
            await box.flush();
          });
        } else {
          const box = await store.openBox(src![0]);
          await (await import('../node/copy.js')).copyOutOfBox(box, src![1], p[1]!);
        }
        return;
      }
      case 'ls': {
        const { v, p } = args(rest, { long: { type: 'boolean', short: 'l' } }, [1, 1]);
        const [name, path] = needBoxPath(p[0]);
        const fs = (await store.openBox(name)).fs;
        const st = fs.stat(path);
        const entries = st.type === 'dir' ? fs.readdir(path).map((e) => ({ ...e, ...fs.lstat(`${path.replace(/\/+$/, '')}/${e.name}`) })) : [{ name: path, ...st }];
        if (v.json) return json(entries.map((e) => ({ name: e.name, type: e.type, mode: e.mode, size: e.size, nlink: e.nlink, ino: e.ino, mtime: e.mtime })));
        if (!v.long) {
          for (const e of entries) out(e.type === 'dir' ? `${e.name}/` : e.name);
          return;
        }
        const kind = { dir: 'd', file: '-', symlink: 'l' } as const;
        const perm = (m: number) => [6, 3, 0].map((s) => ((m >> s) & 4 ? 'r' : '-') + ((m >> s) & 2 ? 'w' : '-') + ((m >> s) & 1 ? 'x' : '-')).join('');
        table(entries.map((e) => [kind[e.type] + perm(e.mode), String(e.nlink), String(e.size), new Date(Number(e.mtime / 1_000_000n)).toISOString().slice(0, 16).replace('T', ' '), e.name]));
        return;
      }
      case 'cat': {
        const { p } = args(rest, {}, [1, 1]);
        const [name, path] = needBoxPath(p[0]);
        const h = (await store.openBox(name)).fs.open(path);
        for (let o = 0; o < h.size; o += 1 << 20) process.stdout.write(h.read(o, 1 << 20));
        return;
      }
      case 'diff': {
        const { v, p } = args(rest, {}, [1, 1]);
        const changes = (await store.openBox(p[0]!)).diff();
        if (v.json) return json(changes);
        for (const c of changes) out(`${c.kind} ${c.path}`);
        return;
      }
      case 'commit': {
        const { v, p } = args(rest, { tag: { type: 'string', short: 't' }, message: { type: 'string', short: 'm' } }, [1, 1]);
        const digest = await store.withBox(p[0]!, async () => (await store.openBox(p[0]!)).commit({ tag: v.tag as string | undefined, message: v.message as string | undefined }));
        out(digest);
        return;
      }
      case 'run':
        return await runCmd(store, rest);
      case 'export': {
        const { v, p } = args(rest, { output: { type: 'string', short: 'o' }, box: { type: 'string', multiple: true }, format: { type: 'string' } }, [0, Infinity]);
        if (!v.output) throw new UsageError('export needs -o FILE');
        const format = (v.format as string | undefined) ?? 'layerbox';
        if (format !== 'layerbox' && format !== 'oci' && format !== 'docker') throw new UsageError(`unknown export format ${format} (this layerbox writes: layerbox, oci, docker)`);
        const boxes = (v.box as unknown as string[] | undefined) ?? [];
        // A box's journal (left by a run that was stopped) is folded in first: the bundle holds every synced change.
        for (const b of boxes) await store.withBox(b, async () => void (await store.checkpoint(b, await store.boxRecord(b))));
        // Streamed to the file: an image may hold files far bigger than memory.
        if (format === 'layerbox') await (await oci()).exportBundleToFile(store, { images: p, boxes }, v.output as string);
        else {
          if (boxes.length) throw new UsageError(`--format ${format} exports images only; commit a box first`);
          await (await oci()).exportOciArchiveToFile(store, p, format, v.output as string);
        }
        return;
      }
      case 'import': {
        const { v, p } = args(rest, { tag: { type: 'string', short: 't' } }, [1, 1]);
        const src = p[0]!;
        const st = await stat(src).catch(() => null);
        if (!st) throw new LayerboxError(`no such file or directory: ${src}`, { code: 'NOT_FOUND' });
        const tag = v.tag as string | undefined;
        const printImages = (imgs: Array<{ digest: string; tags: string[]; note?: string }>) => {
          for (const i of imgs) {
            if (i.note) process.stderr.write(`note: ${i.note}\n`);
            out(`${i.digest}${i.tags.length ? ' ' + i.tags.join(' ') : ''}`);
          }
        };
        if (st.isDirectory()) {
          const imgs = await (await oci()).importOciArchive(store, src, { tag });
          if (!imgs) throw new LayerboxError(`${src} is not an OCI image layout (no oci-layout and index.json); to import a directory tree use: image import DIR --tag NAME`, { code: 'INVALID' });
          return printImages(imgs);
        }
        // A bundle starts with its index: the first header tells, without reading a file that may be gigabytes.
        const first = await readHead(src, 512).catch((e: unknown) => {
          throw new LayerboxError(`cannot read ${src}`, { code: codeOfHostError(e), cause: e });
        });
        const name = new TextDecoder().decode(first.subarray(0, 100)).replace(/\0[^]*$/, '');
        const isBundle = first.length === 512 && name === 'layerbox-bundle.json' && new TextDecoder().decode(first.subarray(257, 262)) === 'ustar';
        if (isBundle) {
          const idx = await (await import('../node/bundle.js')).importBundleFile(store, src);
          printImages(idx.images);
          for (const b of idx.boxes) out(`box ${b.name}`);
          return;
        }
        const imgs = await (await oci()).importOciArchive(store, src, { tag });
        if (imgs) return printImages(imgs);
        out(await store.importTar(src, { tag }));
        return;
      }
      case 'push': {
        const { v, p } = args(rest, NET_FLAGS, [2, 2]);
        const r = await (await oci()).pushToRegistry(store, p[0]!, p[1]!, netOptions(v));
        out(`pushed ${p[1]} (manifest ${r.manifest}): ${r.uploaded} blob${r.uploaded === 1 ? '' : 's'} uploaded, ${r.skipped} already there`);
        return;
      }
      case 'pull': {
        const { v, p } = args(rest, { tag: { type: 'string', short: 't' }, ...NET_FLAGS }, [1, 1]);
        const r = await (await oci()).pullFromRegistry(store, p[0]!, { tag: v.tag as string | undefined, ...netOptions(v) });
        if (r.note) process.stderr.write(`note: ${r.note}\n`);
        out(`${r.digest} ${r.tag}`);
        return;
      }
      case 'gc': {
        args(rest, {}, [0, 0]);
        const r = await store.gc();
        out(`removed ${r.blobs} blobs, ${human(r.bytes)}`);
        return;
      }
      case 'fsck': {
        const { v } = args(rest, {}, [0, 0]);
        const r = await store.fsck();
        // Every problem fsck finds is stored data failing its checks.
        if (v.json) json({ ...r, problems: r.problems.map((x) => ({ code: 'CORRUPT' satisfies LayerboxCode, ...x })) });
        else {
          for (const x of r.problems) out(`${x.digest ?? ''}${x.where ? ` (${x.where})` : ''}: ${x.problem}`);
          out(r.problems.length ? `${r.problems.length} problems in ${r.blobs} blobs` : `ok: ${r.blobs} blobs verified`);
        }
        if (r.problems.length) process.exitCode = 1;
        return;
      }
    }
  } finally {
    await store.backend.close();
  }
}

/** Flags that take a value, so `doing` can tell a command's operands from flag values. */
const VALUE_FLAGS = new Set(['--tag', '-t', '--message', '-m', '--image', '-i', '--box', '--dir', '--env', '-e', '--timeout', '--memory', '--write-cache', '--output', '-o', '--format', '--max-upper-bytes', '--max-files', '--port', '-p', '--connect-timeout', '--idle-timeout']);

/** What a command line does, in words for a host failure: `committing b1`, `importing ./tree`. */
function doing(argv: string[]): string {
  const a = [...argv];
  while (a[0]?.startsWith('--store')) a.splice(0, a[0].includes('=') ? 1 : 2);
  const [cmd, ...rest] = a;
  const ops: string[] = [];
  let box: string | undefined, output: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const x = rest[i]!;
    if (x === '--') break;
    if (VALUE_FLAGS.has(x)) {
      if (x === '--box') box = rest[i + 1];
      if (x === '--output' || x === '-o') output = rest[i + 1];
      i++;
    } else if (!x.startsWith('-')) ops.push(x);
  }
  const [sub, arg, arg2] = ops;
  const boxOf = (x: string | undefined) => x?.slice(0, x.indexOf(':')) ?? '';
  switch (cmd) {
    case 'image':
      return { import: `importing ${arg}`, squash: `squashing ${arg}`, tag: `tagging ${arg}`, rm: `removing image ${arg}` }[sub ?? ''] ?? 'reading the store';
    case 'box':
      return { create: `creating box ${arg}`, rm: `removing box ${arg}`, reset: `resetting box ${arg}`, fork: `forking box ${arg} as ${arg2}` }[sub ?? ''] ?? 'reading the store';
    case 'cp':
      return arg && boxPath(arg) ? `copying into box ${boxOf(arg)}` : `copying out of box ${boxOf(sub)}`;
    case 'ls': case 'cat': case 'diff':
      return `reading box ${boxOf(sub) || sub}`;
    case 'commit': return `committing ${sub}`;
    case 'run': return `running ${sub}${box ? ` in box ${box}` : ''}`;
    case 'export': return `exporting to ${output}`;
    case 'import': return `importing ${sub}`;
    case 'push': return `pushing ${sub}`;
    case 'pull': return `pulling ${sub}`;
    case 'gc': return 'collecting garbage';
    case 'fsck': return 'checking the store';
    default: return `running ${cmd ?? 'layerbox'}`;
  }
}

/** One line, whatever the error carries: control characters (newlines, terminal escapes from stored names) are shown, not sent. */
const oneLine = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? ' ' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));

/**
 * The kind of a failure the user can act on: a LayerboxError's code; an
 * FsError's or a host error's from its errno (ENOENT is NOT_FOUND, ENOSPC is
 * QUOTA); undefined for anything else, which is a bug.
 */
function codeOf(e: unknown): LayerboxCode | undefined {
  if (e instanceof LayerboxError) return e.code;
  return errnoOf(e) === undefined ? undefined : codeOfHostError(e);
}

/**
 * The one place errors meet the user: a usage error exits 2; an error with a
 * code (see `codeOf`) exits 1, as `<what failed> while <what the command was
 * doing>` for a host failure (one carrying a host errno) and as its message
 * otherwise; anything else is an internal error, exit 70. One line each;
 * LAYERBOX_DEBUG=1 adds the code, the stack and the causes.
 */
function report(e: unknown, argv: string[]): void {
  const err = (line: string) => process.stderr.write(`layerbox: ${oneLine(line)}\n`);
  if (e instanceof UsageError || (e as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
    process.stderr.write(`layerbox: ${oneLine((e as Error).message)}\n${USAGE.split('\n')[0]}\n`);
    process.exitCode = 2;
    return;
  }
  const code = codeOf(e);
  // An FsError's message names the path and the failure; other errnos come from the host and name only the failure.
  const errno = e instanceof FsError ? undefined : errnoOf(e);
  if (code === undefined) {
    err(`internal error: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 70;
  } else {
    err(errno !== undefined ? `${describeErrno(errno)} while ${doing(argv)}` : (e as Error).message);
    process.exitCode = 1;
  }
  if (process.env.LAYERBOX_DEBUG === '1') {
    process.stderr.write(`code: ${code ?? 'none (internal error)'}\n`);
    for (let c: unknown = e, depth = 0; c !== undefined && depth < 8; c = (c as { cause?: unknown })?.cause, depth++) process.stderr.write(`${depth ? 'caused by: ' : ''}${(c as Error)?.stack ?? String(c)}\n`);
  }
}

const argv = process.argv.slice(2);
main([...argv]).catch((e: unknown) => report(e, argv));
