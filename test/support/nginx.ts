// A private nginx (Debian's package, /usr/sbin/nginx) in front of test instances, running the repository's
// deploy/nginx/jarvis.conf as it is, with only the upstream servers' addresses and the listen port replaced. It is
// the test's own child process (daemon off), with its own prefix, pid file, temporary folders and logs: the system's
// nginx service, running or not, is never touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server.js';

export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
export const SITE_CONF = 'deploy/nginx/jarvis.conf';

/**
 * The site file with the test's addresses: each `server host:port` line of the `upstream` block gets the next of
 * `upstreams` (its parameters kept), and the `listen` port becomes `listen`. Throws unless the file has exactly as
 * many upstream servers as given and one listen line: the test must run the file, not a different one.
 */
export function siteConfig(text: string, upstreams: string[], listen: string): string {
  const block = /^([ \t]*upstream\s+\w+\s*\{)([^}]*)(\})/m.exec(text);
  if (!block) throw new Error(`${SITE_CONF}: no upstream block`);
  let n = 0;
  const servers = block[2]!.replace(/^(\s*server\s+)\S+/gm, (_, head: string) => {
    const address = upstreams[n++];
    if (address === undefined) throw new Error(`${SITE_CONF}: more upstream servers than the ${upstreams.length} the test runs`);
    return `${head}${address}`;
  });
  if (n !== upstreams.length) throw new Error(`${SITE_CONF}: ${n} upstream servers, the test runs ${upstreams.length}`);
  const withServers = text.slice(0, block.index) + block[1] + servers + block[3] + text.slice(block.index + block[0].length);
  let listens = 0;
  const out = withServers.replace(/^(\s*listen\s+)[^;\s]+/gm, (_, head: string) => {
    listens++;
    return `${head}${listen}`;
  });
  if (listens !== 1) throw new Error(`${SITE_CONF}: ${listens} listen lines; the test replaces exactly one`);
  return out;
}

export interface NginxProcess {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** The access log: what the site's `access_log /dev/stdout` wrote. */
  stdout(): Promise<string>;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

/** Every nginx still running when the test worker exits is killed. */
const running = new Set<ChildProcess>();
let exitHook = false;

/** Starts nginx with the site file in front of `upstreams` (host:port each); resolves once it accepts connections. */
export async function startNginx(opts: { root: string; upstreams: string[] }): Promise<NginxProcess> {
  if (!existsSync(NGINX)) throw new Error(`no nginx at ${NGINX}: apt-get install nginx (.ci/run does), or set NGINX_PATH`);
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-nginx-'));
  const site = siteConfig(await readFile(join(opts.root, SITE_CONF), 'utf8'), opts.upstreams, `127.0.0.1:${port}`);
  await writeFile(join(dir, 'site.conf'), site);
  // The main file is the test's, standing for the image's /etc/nginx/nginx.conf: one worker (requests go round
  // robin between the instances, one after the other), temporary folders and logs under the test's folder.
  const root = process.getuid?.() === 0;
  const main = [
    ...(root ? [`user ${userInfo().username};`] : []),
    'worker_processes 1;',
    `error_log ${dir}/error.log info;`,
    'events { worker_connections 1024; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`),
    `  include ${dir}/site.conf;`,
    '}',
    '',
  ].join('\n');
  await writeFile(join(dir, 'nginx.conf'), main);
  // nginx opens /dev/stdout by name, which fails on the socket Node gives a child for 'pipe' (ENXIO): its stdout is
  // a file, as it is a pipe in a container.
  const stdoutFile = join(dir, 'stdout.log');
  const stdoutFd = openSync(stdoutFile, 'a');
  const child = spawn(NGINX, ['-p', `${dir}/`, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', `daemon off; pid ${dir}/nginx.pid;`], {
    stdio: ['ignore', stdoutFd, 'pipe'],
  });
  closeSync(stdoutFd);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  running.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.once('error', () => {});
  let alive = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      alive = false;
      running.delete(child);
      resolve();
    }),
  );
  const errorLog = () => readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (!alive || Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      const log = await errorLog();
      await rm(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start: ${err}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stdout: () => readFile(stdoutFile, 'utf8').catch(() => ''),
    errorLog,
    async stop() {
      if (alive) {
        // SIGQUIT: a graceful stop; SIGTERM after 5 s (a WebSocket left open would hold a graceful stop up).
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGTERM'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
