// redis-servers of the bench's own that die with it, however it ends. redis-server knows nothing of the bench, so
// each runs under a shell (as scenario 12's does): the shell prints its pid, kills it on SIGTERM or SIGINT (the
// bench's stopAll), and a watcher in it kills it when the bench's pipe to the shell closes (the bench exited or was
// killed, SIGKILL included: the kernel closes the pipe). Each handle is a test/support RedisServer, so
// startRedisCluster (test/support/redis-cluster.ts) can make a cluster of them, with the pid of the server itself
// for its CPU.
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { ping, type RedisServer } from '../test/support/redis-server.js';
import { startRedisCluster, type RedisClusterSet } from '../test/support/redis-cluster.js';
import { freePort, spawnChild, type Child } from './processes.js';

export interface GuardedRedis extends RedisServer {
  /** The redis-server process's pid while it runs. */
  readonly pid: number | undefined;
}

export interface GuardedCluster extends RedisClusterSet {
  /** Every node, with its pid. */
  readonly guarded: GuardedRedis[];
}

const SCRIPT = [
  'redis-server "$@" & r=$!',
  'echo "REDIS_PID $r"',
  "trap 'kill $r 2>/dev/null; wait $r; kill $w 2>/dev/null; wait $w; exit 0' TERM INT",
  'exec 3<&0',
  // The watcher is the subshell alone (read is a builtin), so killing it leaves no process behind.
  "(while read -r _ <&3; do :; done; kill $r 2>/dev/null) & w=$!",
  'wait $r',
  'kill $w 2>/dev/null',
  'wait $w',
].join('\n');

/** A handle on a guarded redis-server for `port`, not yet started; `args` go on its command line after the bench's own. */
export function guardedRedisOn(port: number, args: string[] = []): GuardedRedis {
  let child: Child | undefined;
  let pid: number | undefined;

  const start = async (): Promise<void> => {
    if (child) throw new Error(`redis-server on ${port} is already running`);
    // Persistence is off, so nothing is written to its working directory (a cluster node's --dir holds its nodes file).
    const argv = ['-c', SCRIPT, 'bench-redis', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning', ...args];
    const proc = spawnChild('redis', 'sh', argv, { cwd: tmpdir(), stdout: 'lines' });
    child = proc;
    // redis-server logs to stdout: its last lines say why it did not start.
    let output: string[] = [];
    proc.onLine((line) => {
      output = [...output.slice(-9), line];
    });
    let exited = false;
    void proc.exited.then(() => {
      exited = true;
      if (child === proc) {
        child = undefined;
        pid = undefined;
      }
    });
    try {
      pid = Number((await proc.waitForLine(/^REDIS_PID (\d+)$/, 10_000))[1]);
      const deadline = Date.now() + 10_000;
      for (;;) {
        if (exited) throw new Error(`redis-server on port ${port} exited at start: ${[...output, proc.stderrTail().trim()].join(' | ').slice(-500)}`);
        if (await ping(port)) return;
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } catch (err) {
      await stop('SIGKILL');
      throw err;
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const proc = child;
    if (proc) {
      // The signal goes to the server itself (SIGKILL: the crash a test may want); the shell then ends with it.
      if (pid !== undefined) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      } else {
        proc.proc.kill('SIGTERM');
      }
      const timer = setTimeout(() => proc.proc.kill('SIGKILL'), 5000);
      await proc.exited;
      clearTimeout(timer);
      proc.proc.stdin?.end();
    }
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined;
    },
    get pid() {
      return pid;
    },
    start,
    stop,
    async restart(signal: NodeJS.Signals = 'SIGTERM') {
      await stop(signal);
      await start();
    },
    signal(sig) {
      if (pid === undefined) throw new Error(`redis-server on ${port} is not running`);
      process.kill(pid, sig);
    },
  };
}

/** A guarded redis-server on a free loopback port (a few fresh ports are tried if another process takes one first). */
export async function startGuardedRedis(args: string[] = []): Promise<GuardedRedis> {
  for (let attempt = 0; ; attempt++) {
    const server = guardedRedisOn(await freePort(), args);
    try {
      await server.start();
      return server;
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
}

/** test/support's six-node cluster (three masters, three replicas), every node a guarded redis-server. */
export async function startGuardedCluster(): Promise<GuardedCluster> {
  const guarded: GuardedRedis[] = [];
  const set = await startRedisCluster({
    startServer: async (args) => {
      const s = await startGuardedRedis(args);
      guarded.push(s);
      return s;
    },
  });
  return Object.assign(set, { guarded });
}

/** The version a Redis server reports (INFO server), or undefined when it does not answer. */
export async function redisVersion(url: string): Promise<string | undefined> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return /redis_version:([\d.]+)/.exec(await r.info('server'))?.[1];
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}
