// OCI workloads of `npm run bench`: the same 10,000-file tree through layerbox's CLI
// and through umoci/skopeo, each measured as wall time of the whole command (best of REPS).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function ociBench(root, reps) {
  const have = (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
  if (!have('umoci') || !have('skopeo')) return { skipped: 'umoci or skopeo missing (bash scripts/ensure-oci-tools.sh)' };
  const tree = join(root, 'bench/.fixtures/oci-tree');
  if (!existsSync(join(tree, 'd99/f9999.txt'))) {
    for (let i = 0; i < 10000; i++) {
      const d = join(tree, `d${Math.floor(i / 100)}`);
      if (i % 100 === 0) mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `f${i}.txt`), `file ${i}\n`.repeat(1 + (i % 20)));
    }
  }
  const cli = join(root, 'dist/cli.js');
  const time = (cmd, args, opts = {}) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const best = (setup, run) => {
    let b = Infinity;
    for (let i = 0; i < reps; i++) {
      const ctx = setup();
      try {
        b = Math.min(b, run(ctx));
      } finally {
        rmSync(ctx.dir, { recursive: true, force: true });
      }
    }
    return b;
  };
  const fresh = () => ({ dir: mkdtempSync(join(tmpdir(), 'lb-ocibench-')) });
  const withImage = () => {
    const c = fresh();
    spawnSync(process.execPath, [cli, '--store', join(c.dir, 's'), 'image', 'import', tree, '--tag', 't']);
    return c;
  };
  const withUmoci = () => {
    const c = fresh();
    const L = join(c.dir, 'L');
    spawnSync('umoci', ['init', '--layout', L]);
    spawnSync('umoci', ['new', '--image', `${L}:t`]);
    spawnSync('umoci', ['unpack', '--rootless', '--image', `${L}:t`, join(c.dir, 'b')]);
    cpSync(tree, join(c.dir, 'b/rootfs'), { recursive: true });
    return c;
  };
  const withArchive = () => {
    const c = withImage();
    spawnSync(process.execPath, [cli, '--store', join(c.dir, 's'), 'export', 't', '--format', 'oci', '-o', join(c.dir, 'x.tar')]);
    return c;
  };
  return {
    rows: [
      { label: 'directory -> image layer (10k files)', layerbox: best(fresh, (c) => time(process.execPath, [cli, '--store', join(c.dir, 's'), 'image', 'import', tree, '--tag', 't'])), peer: best(withUmoci, (c) => time('umoci', ['repack', '--image', `${join(c.dir, 'L')}:t`, join(c.dir, 'b')])), peerName: 'umoci repack' },
      { label: 'image -> OCI archive', layerbox: best(withImage, (c) => time(process.execPath, [cli, '--store', join(c.dir, 's'), 'export', 't', '--format', 'oci', '-o', join(c.dir, 'x.tar')])), peer: best(withArchive, (c) => time('skopeo', ['copy', '-q', `oci-archive:${join(c.dir, 'x.tar')}`, `oci-archive:${join(c.dir, 'y.tar')}:t`])), peerName: 'skopeo copy oci-archive -> oci-archive (copies the built layer blob; builds nothing)' },
      { label: 'OCI archive -> usable tree/image', layerbox: best(withArchive, (c) => time(process.execPath, [cli, '--store', join(c.dir, 's2'), 'import', join(c.dir, 'x.tar')])), peer: best(withArchive, (c) => time('sh', ['-c', `skopeo copy -q oci-archive:${join(c.dir, 'x.tar')} oci:${join(c.dir, 'L2')}:t && umoci raw unpack --rootless --image ${join(c.dir, 'L2')}:t ${join(c.dir, 'rootfs')}`])), peerName: 'skopeo copy + umoci raw unpack' },
    ],
  };
}
