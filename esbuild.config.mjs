// Builds the package's entries: the Node library, the CLI, the host-neutral
// core and the browser library. Types come from `tsc -p tsconfig.build.json`.
import { build } from 'esbuild';

const common = { bundle: true, format: 'esm', sourcemap: true, target: 'es2022', logLevel: 'warning' };
const nodeBanner = { js: "import { createRequire as __lbCreateRequire } from 'node:module'; const require = __lbCreateRequire(import.meta.url);" };

await Promise.all([
  build({ ...common, platform: 'node', entryPoints: { node: 'runtime/node/index.ts' }, outdir: 'dist', banner: nodeBanner }),
  build({ ...common, platform: 'node', entryPoints: { worker: 'runtime/node/worker.ts' }, outdir: 'dist', banner: nodeBanner }),
  build({ ...common, platform: 'node', entryPoints: { cli: 'runtime/cli/main.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node\n' + nodeBanner.js } }),
  build({ ...common, platform: 'neutral', entryPoints: { core: 'src/index.ts' }, outdir: 'dist', mainFields: ['module', 'main'] }),
  build({ ...common, platform: 'browser', entryPoints: { browser: 'runtime/browser/index.ts' }, outdir: 'dist' }),
  build({ ...common, platform: 'browser', entryPoints: { 'browser-worker': 'runtime/browser/worker.ts' }, outdir: 'dist' }),
]);
