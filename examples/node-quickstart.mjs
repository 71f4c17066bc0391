// Import a directory as an image, change files in a box, diff and commit.
// Run after `npm run build`:  node examples/node-quickstart.mjs [STORE_DIR]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from 'layerbox';

const storeDir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'layerbox-quickstart-'));
const store = await openStore(storeDir);

const image = await store.importDirectory(new URL('./hello-tree', import.meta.url).pathname, { tag: 'hello' });
console.log('imported hello ->', image);

const box = await store.createBox(`demo-${Date.now()}`, { image: 'hello' });
box.fs.writeFile('/etc/app.conf', 'greeting=bonjour\n');
box.fs.mkdir('/var');
box.fs.writeFile('/var/log.txt', 'started\n');
box.fs.unlink('/README.md');
await box.flush();

console.log('diff:');
for (const c of box.diff()) console.log(`  ${c.kind} ${c.path}`);

const v2 = await box.commit({ tag: 'hello:v2', message: 'say bonjour' });
console.log('committed hello:v2 ->', v2);
for (const h of await store.history('hello:v2')) console.log(`  ${h.layer.slice(7, 19)}  ${h.createdBy}  ${h.comment}`);
console.log(`store: ${storeDir}`);
await store.backend.close();
