/**
 * `layerbox playground`: serves the built `dist/` directory (the browser
 * library, its worker, the playground page under /playground/ and its ready
 * images under /playground/images/) on 127.0.0.1, cross-origin isolated so
 * guests run in a Web Worker. `/` redirects to `/playground/`.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LayerboxError } from '../../src/errno.js';
import { type StaticServer, startStaticServer } from './static-server.js';

export interface PlaygroundServer extends StaticServer {
  /** `http://127.0.0.1:PORT/playground/` */
  readonly url: string;
}

/** Serves `dist` (a built layerbox `dist/` directory) on 127.0.0.1:`port` (0: a free port). */
export async function startPlaygroundServer(opts: { dist: string; port?: number }): Promise<PlaygroundServer> {
  const st = await stat(join(opts.dist, 'playground')).catch(() => null);
  if (!st?.isDirectory()) throw new LayerboxError(`the playground is not built (no ${join(opts.dist, 'playground')}): run npm run build`, { code: 'NOT_FOUND' });
  const s = await startStaticServer({
    root: opts.dist,
    port: opts.port ?? 0,
    index: true,
    // Served files change when `npm run build` runs again: revalidate (Last-Modified) instead of refetching the images.
    cacheControl: 'no-cache',
    redirects: { '/': '/playground/' },
  });
  return Object.assign(s, { url: `${s.origin}/playground/` });
}
