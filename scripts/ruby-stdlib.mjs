#!/usr/bin/env node
// Extracts the Ruby standard library that `ruby+stdlib.wasm` (from
// @ruby/3.4-wasm-wasi) embeds under /usr/local/lib/ruby into a host
// directory, by running that module with layerbox itself: a box over an
// empty image, plus a HostFs mount of a fresh directory at /out, driven
// through RubyVM from @ruby/wasm-wasi. The result is a realistic lower image
// for bare `ruby.wasm` (about 1,900 files, 14.5 MB, 14 levels deep).
//
//   node scripts/ruby-stdlib.mjs [OUT]    # default test/.cache/ruby-stdlib
//
// OUT holds what /usr/local/lib/ruby holds (3.4.0/, site_ruby/, ...). It is
// written to a temp directory next to it and renamed into place, so an OUT
// that exists is complete: then nothing is done. Remove OUT to extract again.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { newest } from './lib/newest.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const defaultOut = join(root, 'test/.cache/ruby-stdlib');

/** The directory the stdlib lives in inside ruby+stdlib.wasm (its embedded /usr). */
const STDLIB = '/usr/local/lib/ruby';


/** layerbox's Node library from dist/ (bundled first if it is missing or older than src/ and runtime/). */
async function loadLayerbox() {
  const entry = join(root, 'dist/node.js');
  if (!existsSync(entry) || statSync(entry).mtimeMs < Math.max(newest(join(root, 'src')), newest(join(root, 'runtime')))) {
    const r = spawnSync(process.execPath, ['esbuild.config.mjs'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('ruby-stdlib: building dist/ failed');
  }
  return import(pathToFileURL(entry).href);
}

/**
 * Extracts into `out` unless it already exists. `lib` is layerbox's Node
 * library (`openStore`, `HostFs`); by default the built one in dist/.
 * Returns `{ out, files, skipped }`.
 */
export async function extractRubyStdlib(out = defaultOut, { lib, log = () => {} } = {}) {
  out = resolve(out);
  if (existsSync(out)) return { out, files: null, skipped: true };
  const { openStore, HostFs } = lib ?? (await loadLayerbox());
  const { RubyVM } = await import('@ruby/wasm-wasi');

  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const store = await openStore('memory:');
    await store.importLayer(async (b) => b.addDir('/'), { tag: 'empty' });
    const box = await store.createBox('ruby-stdlib', { image: 'empty' });
    const err = [];
    const wasi = box.wasi({
      args: ['ruby', '-EUTF-8', '-e_=0'],
      mounts: [{ guest: '/out', fs: new HostFs(tmp) }],
      stdout: (b) => log(new TextDecoder().decode(b)),
      stderr: (b) => err.push(new TextDecoder().decode(b)),
    });
    const wasmPath = fileURLToPath(import.meta.resolve('@ruby/3.4-wasm-wasi/dist/ruby+stdlib.wasm'));
    const module = await WebAssembly.compile(readFileSync(wasmPath));
    const { vm } = await RubyVM.instantiateModule({ module, wasip1: wasi, args: ['ruby', '-EUTF-8', '-e_=0'] });
    // Plain Dir/File calls only (no requires), so this walks the embedded
    // tree without loading anything from it. Paths are built without a
    // trailing slash: the embedded file system (wasi-vfs) answers ENOENT for
    // "/usr/local/lib/ruby/". Everything there is a file, directory or symlink.
    const count = Number(vm.eval(`
      n = 0
      walk = lambda do |from, to|
        Dir.children(from).sort.each do |name|
          f = from + '/' + name
          t = to + '/' + name
          if File.symlink?(f)
            File.symlink(File.readlink(f), t)
          elsif File.directory?(f)
            Dir.mkdir(t)
            walk.call(f, t)
          else
            File.binwrite(t, File.binread(f))
          end
          n += 1
        end
      end
      walk.call(${JSON.stringify(STDLIB)}, '/out')
      n
    `).toString());
    if (!count) throw new Error(`ruby-stdlib: nothing was extracted from ${STDLIB}\n${err.join('')}`);
    try {
      renameSync(tmp, out);
    } catch (e) {
      // Another process finished first: its copy is as good as this one.
      if (!existsSync(out)) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
    return { out, files: count, skipped: false };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const t = Date.now();
  const r = await extractRubyStdlib(process.argv[2] ?? defaultOut, { log: (s) => process.stdout.write(s) });
  console.log(r.skipped ? `ruby-stdlib: ${r.out} exists; nothing to do` : `ruby-stdlib: ${r.files} entries into ${r.out} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}
