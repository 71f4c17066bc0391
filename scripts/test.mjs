// The whole test run: build, type checks, then every test file; ends with "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status === 0;
const step = (name, cmd, args) => {
  process.stdout.write(`\n== ${name}\n`);
  if (!run(cmd, args)) {
    console.log(`\n${name} failed\n0 passed, 1 failed`);
    process.exit(1);
  }
};

step('build', 'npm', ['run', '--silent', 'build']);
step('typecheck', 'npm', ['run', '--silent', 'typecheck']);
// The browser tests drive Debian's Chromium: install it if this machine lacks it.
if (!existsSync('/usr/bin/chromium')) step('chromium', 'bash', [fileURLToPath(new URL('./ensure-chromium.sh', import.meta.url))]);
// The OCI interop tests drive Debian's skopeo and umoci: install them if this machine lacks them.
if (!existsSync('/usr/bin/skopeo') || !existsSync('/usr/bin/umoci')) step('oci tools', 'bash', [fileURLToPath(new URL('./ensure-oci-tools.sh', import.meta.url))]);
// The registry tests run Debian's docker-registry: install it if this machine lacks it.
if (!existsSync('/usr/bin/docker-registry')) step('registry', 'bash', [fileURLToPath(new URL('./ensure-registry.sh', import.meta.url))]);

// The attack tests measure the CLI's peak memory with GNU time: install it if this machine lacks it.
if (!existsSync('/usr/bin/time')) step('test tools', 'bash', [fileURLToPath(new URL('./ensure-test-tools.sh', import.meta.url))]);

const dir = mkdtempSync(join(tmpdir(), 'layerbox-test-'));
const report = join(dir, 'report.json');
process.stdout.write('\n== tests\n');
const ok = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]);
let passed = 0, failed = 0;
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numFailedTestSuites ?? 0) * (r.numTotalTests === 0 ? 1 : 0);
} catch {
  failed = 1;
}
rmSync(dir, { recursive: true, force: true });
if (!ok && failed === 0) failed = 1;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);
