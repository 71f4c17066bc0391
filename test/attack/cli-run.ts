import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';

/** The built CLI, as a user runs it. */
export const CLI = resolve('dist/cli.js');

/**
 * Only a safety net: a run that hangs is killed after this long so the suite
 * reports it, and `killed` says so (tests assert it is false, never wait on it).
 */
const SAFETY_KILL_MS = 60_000;

export interface CliRun { code: number | null; killed: boolean; stdout: string; stderr: string }

/** Runs the built CLI on a store; never throws. */
export function cli(store: string, ...argv: string[]): Promise<CliRun> {
  return cliWith({}, store, ...argv);
}

/** `cli` with node options (`--import` a test double) and extra environment. */
export function cliWith(o: { nodeArgs?: string[]; env?: Record<string, string> }, store: string, ...argv: string[]): Promise<CliRun> {
  return new Promise((done) => {
    execFile(process.execPath, [...(o.nodeArgs ?? []), CLI, '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '', LAYERBOX_DEBUG: '', ...o.env }, maxBuffer: 64 << 20, timeout: SAFETY_KILL_MS, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; killed?: boolean }) | null;
      done({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, killed: !!e?.killed, stdout, stderr });
    });
  });
}

/** What a user may see from any command, whatever the input: it ended by itself, no stack, no JavaScript error text. */
export function expectNoCrash(r: CliRun, what: string): void {
  expect(r.killed, `${what}: had to be killed`).toBe(false);
  const all = r.stdout + r.stderr;
  expect(all, `${what}: stack trace`).not.toMatch(/^\s+at /m);
  expect(all, `${what}: JavaScript error text`).not.toMatch(/TypeError|RangeError|ReferenceError|SyntaxError|internal error/);
  expect([0, 1], `${what}: exit code ${r.code}, stderr ${r.stderr}`).toContain(r.code);
}

/** A clear refusal: exit 1, and stderr is one line `layerbox: ...` (matching `pattern` if given). */
export function expectOneLine(r: CliRun, what: string, pattern?: RegExp): void {
  expectNoCrash(r, what);
  expect(r.code, `${what}: exit code (stderr: ${r.stderr})`).toBe(1);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, `${what}: stderr`).toHaveLength(1);
  expect(lines[0], what).toMatch(/^layerbox: /);
  if (pattern) expect(lines[0], what).toMatch(pattern);
}

/** Runs the built CLI under GNU time (/usr/bin/time, see scripts/ensure-test-tools.sh): its exit code, output, and peak RSS in MB. */
export async function cliMeasured(store: string, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string; rssMB: number }> {
  const out = join(tmpdir(), `layerbox-time-${randomBytes(6).toString('hex')}`);
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile('/usr/bin/time', ['-f', '%M', '-o', out, process.execPath, CLI, '--store', store, ...argv], { env: { ...process.env, LAYERBOX_STORE: '' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown }) | null;
      done({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
  const kb = Number((await readFile(out, 'utf8')).trim().split('\n').pop());
  await rm(out, { force: true });
  console.log(`peak RSS of layerbox ${argv.join(' ')}: ${Math.round(kb / 1024)} MB`);
  return { ...r, rssMB: kb / 1024 };
}
