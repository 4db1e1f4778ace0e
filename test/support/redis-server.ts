// A private redis-server for tests that stop, kill or restart Redis: never the shared one on 6379. It runs on
// its own loopback port with persistence off, and can be stopped with any signal and started again on the same
// port (what a Redis restart looks like to Jarvis). Readiness is a PING answered, polled, never a sleep.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly running: boolean;
  /** Starts it (again) on the same port and resolves once it answers PING. */
  start(): Promise<void>;
  /** Sends `signal` and resolves once the process has exited. A no-op when it is not running. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** stop(signal) then start(): the same port, an empty dataset. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Sends a signal and returns at once: SIGSTOP freezes Redis with its connections open, SIGCONT thaws it. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void;
}

/** A loopback port that was free a moment ago: bound to port 0, read, released. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One PING over a raw socket: true on +PONG, false on anything else (refused, loading, closed). */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** Every child still alive when the test process exits is killed, so a crashed test leaves no Redis behind. */
const alive = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of alive) c.kill('SIGKILL');
    });
  }
  alive.add(child);
  child.once('exit', () => alive.delete(child));
}

/**
 * Starts a private redis-server on a free loopback port (or `port`). Tries a few fresh ports if another
 * process takes the chosen one between our probe and Redis binding it.
 */
export async function startRedisServer(opts: { port?: number; args?: string[] } = {}): Promise<RedisServer> {
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const server = redisServerOn(port, opts.args);
    try {
      await server.start();
      return server;
    } catch (err) {
      if (opts.port !== undefined || attempt >= 4) throw err;
    }
  }
}

/** A handle on a redis-server for `port`, not yet started; `args` go on its command line (`--enable-debug-command yes`). */
export function redisServerOn(port: number, args: string[] = []): RedisServer {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    if (child) throw new Error(`redis-server on ${port} is already running`);
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    track(proc);
    let output = '';
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    let hasExited = false;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', () => {
        hasExited = true;
        if (child === proc) child = undefined;
        resolve();
      });
    });
    proc.once('error', () => {});
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (hasExited) throw new Error(`redis-server on port ${port} exited at start: ${output.trim().slice(-500)}`);
      if (await ping(port)) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${output.trim().slice(-500)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const proc = child;
    if (!proc) return exited;
    proc.kill(signal);
    await exited;
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined;
    },
    start,
    stop,
    async restart(signal: NodeJS.Signals = 'SIGTERM') {
      await stop(signal);
      await start();
    },
    signal(sig) {
      if (!child) throw new Error(`redis-server on ${port} is not running`);
      child.kill(sig);
    },
  };
}
