// `npm start`: builds layerbox, then walks through the CLI on the example tree.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sh = (cmd, args, show = true) => {
  if (show) console.log(`\n$ ${[cmd === process.execPath ? 'layerbox' : cmd, ...args.slice(cmd === process.execPath ? 1 : 0)].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

sh('npm', ['run', '--silent', 'build'], false);
const store = mkdtempSync(join(tmpdir(), 'layerbox-demo-'));
const lb = (...a) => sh(process.execPath, ['dist/cli.js', '--store', store, ...a]);
lb('--help');
lb('image', 'import', 'examples/hello-tree', '--tag', 'hello');
lb('box', 'create', 'demo', '--image', 'hello');
lb('cp', 'package.json', 'demo:/etc');
lb('diff', 'demo');
lb('commit', 'demo', '--tag', 'hello:v2', '-m', 'add package.json');
lb('image', 'history', 'hello:v2');
lb('ls', '-l', 'demo:/etc');
console.log(`\nThe demo store is ${store}. Try: node dist/cli.js --store ${store} box ls`);
