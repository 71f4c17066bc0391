// Builds the package's entries: the Node library, the CLI, the host-neutral
// core and the browser library; and, once examples/playground/ has it, the
// playground page (dist/playground/app.js plus its index.html and CSS).
// Types come from `tsc -p tsconfig.build.json`; the playground's images from
// scripts/build-playground.mjs.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const common = { bundle: true, format: 'esm', sourcemap: true, target: 'es2022', logLevel: 'warning' };
const nodeBanner = { js: "import { createRequire as __lbCreateRequire } from 'node:module'; const require = __lbCreateRequire(import.meta.url);" };
const PLAYGROUND = 'examples/playground';
const hasPlayground = existsSync(`${PLAYGROUND}/app.ts`);

// The CLI's chunks are named by content: old ones would pile up.
rmSync('dist/cli-chunks', { recursive: true, force: true });

await Promise.all([
  build({ ...common, platform: 'node', entryPoints: { node: 'runtime/node/index.ts' }, outdir: 'dist', banner: nodeBanner }),
  build({ ...common, platform: 'node', entryPoints: { worker: 'runtime/node/worker.ts' }, outdir: 'dist', banner: nodeBanner }),
  // Split: what only some commands need (registries, OCI, the playground server) is in chunks loaded when they run.
  build({ ...common, platform: 'node', entryPoints: { cli: 'runtime/cli/main.ts' }, outdir: 'dist', splitting: true, chunkNames: 'cli-chunks/[name]-[hash]', minifyWhitespace: true, minifySyntax: true, banner: { js: '#!/usr/bin/env node\n' + nodeBanner.js } }),
  build({ ...common, platform: 'neutral', entryPoints: { core: 'src/index.ts' }, outdir: 'dist', mainFields: ['module', 'main'] }),
  build({ ...common, platform: 'browser', entryPoints: { browser: 'runtime/browser/index.ts' }, outdir: 'dist' }),
  build({ ...common, platform: 'browser', entryPoints: { 'browser-worker': 'runtime/browser/worker.ts' }, outdir: 'dist' }),
  // The page is only built once its source exists, so the library builds without it.
  hasPlayground && build({ ...common, platform: 'browser', entryPoints: { 'playground/app': `${PLAYGROUND}/app.ts` }, outdir: 'dist' }),
]);

// The page's static files next to its bundle.
if (existsSync(PLAYGROUND)) {
  const statics = readdirSync(PLAYGROUND).filter((f) => f === 'index.html' || f.endsWith('.css'));
  if (statics.length) mkdirSync('dist/playground', { recursive: true });
  for (const f of statics) copyFileSync(`${PLAYGROUND}/${f}`, `dist/playground/${f}`);
}
