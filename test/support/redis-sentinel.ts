// A Redis Sentinel set of a test's own: one master, one replica and three sentinels (`redis-server --sentinel`), on
// loopback ports, with a failover that takes about a second to notice. Readiness and failover are polled, never slept.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, ping, startRedisServer, type RedisServer } from './redis-server.js';
import { pollUntil } from './cluster.js';

export const SENTINEL_NAME = 'jarvis-test';

export interface SentinelSet {
  /** `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`, as REDIS_SENTINELS takes them. */
  readonly sentinels: string;
  readonly master: RedisServer;
  readonly replica: RedisServer;
  /** The port the sentinels name as the master now. */
  masterPort(): Promise<number>;
  /** Kills the master (SIGKILL) and resolves once the sentinels name the replica as the master. */
  killMaster(): Promise<void>;
  close(): Promise<void>;
}

export async function startSentinelSet(): Promise<SentinelSet> {
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-sentinel-'));
  // Their own folder: a replica's first sync writes the master's snapshot to disk.
  const master = await startRedisServer({ args: ['--dir', dir] });
  const replica = await startRedisServer({ args: ['--dir', dir, '--replicaof', '127.0.0.1', String(master.port)] });
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${i}.conf`);
    await writeFile(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'protected-mode no',
        `dir ${dir}`,
        `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`,
        `sentinel failover-timeout ${SENTINEL_NAME} 5000`,
        `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
        '',
      ].join('\n'),
    );
    const proc = spawn('redis-server', [conf, '--sentinel', '--loglevel', 'warning'], { stdio: 'ignore' });
    proc.once('error', () => {});
    procs.push(proc);
    ports.push(port);
  }
  process.once('exit', () => procs.forEach((p) => p.kill('SIGKILL')));
  const clients = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 }));
  for (const c of clients) c.on('error', () => {});
  const close = async () => {
    for (const c of clients) c.disconnect();
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all([master.stop('SIGKILL'), replica.stop('SIGKILL')]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await pollUntil(async () => ((await Promise.all(ports.map((p) => ping(p)))).every(Boolean) ? true : undefined), 'three sentinels answering');
    await Promise.all(clients.map((c) => c.connect()));
    // Each sentinel has found the replica and the two other sentinels: a failover can be agreed.
    await pollUntil(
      async () => {
        const seen = await Promise.all(
          clients.map(async (c) => {
            const replicas = (await c.call('SENTINEL', 'REPLICAS', SENTINEL_NAME)) as unknown[];
            const others = (await c.call('SENTINEL', 'SENTINELS', SENTINEL_NAME)) as unknown[];
            return replicas.length >= 1 && others.length >= 2;
          }),
        );
        return seen.every(Boolean) || undefined;
      },
      'the sentinels to know the replica and each other',
      30_000,
      100,
    );
  } catch (err) {
    await close();
    throw err;
  }
  const masterPort = async () => {
    const [, port] = (await clients[0]!.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_NAME)) as [string, string];
    return Number(port);
  };
  return {
    sentinels: ports.map((p) => `127.0.0.1:${p}`).join(','),
    master,
    replica,
    masterPort,
    async killMaster() {
      await master.stop('SIGKILL');
      await pollUntil(async () => ((await masterPort()) === replica.port ? true : undefined), 'the replica promoted', 30_000, 50);
    },
    close,
  };
}
