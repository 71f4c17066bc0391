// Shared by the one-measurement processes of `npm run bench` (bench/runner.mjs,
// bench/programs.mjs): each prints exactly one JSON line on stdout, the result
// or { error } with a short reason, so a runtime that fails shows why.

/** A one-line reason for a failed run: a wasm panic names the WASI call it happened in. */
export function shortError(e) {
  const msg = e instanceof Error ? e.message : String(e);
  const stack = e instanceof Error ? String(e.stack ?? '') : '';
  if (/unreachable/.test(msg)) {
    const call = /at (__wasi_\w+|wasi_snapshot_preview1\.\w+)/.exec(`${msg}\n${stack}`);
    return `panic (unreachable)${call ? ` in ${call[1].replace(/^__wasi_|^wasi_snapshot_preview1\./, '')}` : ''}`;
  }
  const exit = /^exit (\d+):\s*/.exec(msg);
  const lines = msg
    .slice(exit ? exit[0].length : 0)
    .split('\n')
    .map((l) => l.trim())
    // The SQLite shell's notice about ~/.sqliterc is printed by every runtime; never the reason.
    .filter((l) => l && !/cannot find home directory|^at /.test(l));
  const first = (lines[0] ?? '').replace(/^Error:\s*/, '').slice(0, 200);
  if (exit) return first ? `${first} (exit ${exit[1]})` : `exit ${exit[1]}`;
  return first || 'failed';
}

/** Runs `main`, printing its result (an object) or { error } as the last line of stdout. */
export async function report(main) {
  try {
    const r = await main();
    console.log(JSON.stringify(r));
  } catch (e) {
    console.log(JSON.stringify({ error: shortError(e) }));
    process.exitCode = 1;
  }
}
