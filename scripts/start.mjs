// `npm start`: builds layerbox (library, CLI, playground page and images),
// then serves the playground with `layerbox playground` until interrupted.
// The port is $PORT, else 8080; a free one when that is taken.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

const build = spawnSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const wanted = process.env.PORT ? Number(process.env.PORT) : 8080;
if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) {
  console.error(`start: PORT must be a port number, got ${process.env.PORT}`);
  process.exit(2);
}

/** Whether 127.0.0.1:port can be listened on right now. */
const isFree = (port) =>
  new Promise((ok) => {
    const s = createServer();
    s.once('error', () => ok(false));
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
  });

let child = null;
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stopping = true;
    if (child) child.kill(sig);
    else process.exit(0);
  });
}

/** Runs `layerbox playground --port PORT`; resolves with its exit code, or 'taken' if it could not listen. */
function serve(port) {
  return new Promise((done) => {
    let started = false;
    let err = '';
    child = spawn(process.execPath, ['dist/cli.js', 'playground', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b) => {
      process.stdout.write(b);
      if (!started && b.toString().includes('Playground: ')) {
        started = true;
        console.log('The CLI: node dist/cli.js --help   (Ctrl-C stops the server)');
      }
    });
    child.stderr.on('data', (b) => {
      if (started) process.stderr.write(b);
      else err += b;
    });
    child.on('exit', (code, signal) => {
      child = null;
      // Someone took the port between the check and the listen: try a free one.
      if (!started && !stopping && port !== 0 && /already in use/.test(err)) return done('taken');
      if (err) process.stderr.write(err);
      done(code ?? (signal && !stopping ? 1 : 0));
    });
  });
}

let port = wanted;
if (port !== 0 && !(await isFree(port))) {
  console.log(`Port ${port} is taken; serving on a free port instead.`);
  port = 0;
}
let code = await serve(port);
if (code === 'taken') code = await serve(0);
process.exit(code);
