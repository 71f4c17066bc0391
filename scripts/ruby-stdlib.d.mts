// Types for scripts/ruby-stdlib.mjs (imported by test/programs.test.ts).

/** test/.cache/ruby-stdlib under the repository. */
export declare const defaultOut: string;

/** The parts of layerbox's Node library the extraction uses. */
export interface LayerboxNodeLib {
  openStore: typeof import('../runtime/node/index.js').openStore;
  HostFs: typeof import('../runtime/node/index.js').HostFs;
}

/**
 * Extracts ruby+stdlib.wasm's /usr/local/lib/ruby into `out` (default
 * `defaultOut`) unless `out` exists. `files` is the number of entries
 * written, null when skipped.
 */
export declare function extractRubyStdlib(
  out?: string,
  opts?: { lib?: LayerboxNodeLib; log?: (s: string) => void },
): Promise<{ out: string; files: number | null; skipped: boolean }>;
