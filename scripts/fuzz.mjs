// `npm run fuzz [-- SECONDS]`: runs each fuzz target of test/fuzz for SECONDS (default 600).
import { spawnSync } from 'node:child_process';

const seconds = process.argv[2] ?? process.env.FUZZ_SECONDS ?? '600';
const r = spawnSync('npx', ['vitest', 'run', 'test/fuzz', '--testTimeout', String((Number(seconds) + 60) * 1000)], { stdio: 'inherit', env: { ...process.env, FUZZ_SECONDS: seconds } });
process.exit(r.status ?? 1);
