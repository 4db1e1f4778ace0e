// A Redis Cluster of a test's own: six redis-servers on loopback ports (three masters, three replicas), made with
// `redis-cli --cluster create`, with a node timeout of one second so a killed master's replica takes over within a
// few. Readiness and failover are polled, never slept.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { pollUntil } from './cluster.js';
import { freePort, startRedisServer, type RedisServer } from './redis-server.js';

const run = promisify(execFile);

export interface RedisClusterSet {
  /** `127.0.0.1:p1,...`, every node, as REDIS_CLUSTER_NODES takes them. */
  readonly nodes: string;
  readonly servers: RedisServer[];
  /** The master that serves `key`'s slot now. */
  masterOf(key: string): Promise<RedisServer>;
  /** How many live replicas the master serving `key`'s slot has: 0 means it cannot fail over. */
  replicasOf(key: string): Promise<number>;
  /**
   * Kills (SIGKILL) the master serving `key`'s slot; `promoted` resolves once a replica serves the slot and every
   * node says the cluster is ok.
   */
  killMasterOf(key: string): Promise<{ killed: RedisServer; promoted: Promise<RedisServer> }>;
  close(): Promise<void>;
}

/** A node's view: `CLUSTER NODES` parsed into who is master of which slots. */
interface NodeLine {
  id: string;
  /** A replica's master's id; '-' for a master. */
  of: string;
  port: number;
  master: boolean;
  failed: boolean;
  slots: [number, number][];
}

function parseNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id = '', addr = '', flags = '', of = '-', , , , , ...slots] = line.split(' ');
      return {
        id,
        of,
        port: Number(addr.split('@')[0]!.split(':')[1]),
        master: flags.split(',').includes('master'),
        failed: /fail/.test(flags),
        slots: slots.filter((s) => /^\d/.test(s)).map((s) => {
          const [a, b = a] = s.split('-');
          return [Number(a), Number(b)] as [number, number];
        }),
      };
    });
}

export interface RedisClusterOptions {
  /**
   * Starts one node, a redis-server with these arguments on a port of its choosing, and resolves once it answers
   * PING. Default: startRedisServer (a child of this process, killed when it exits). The bench passes its own, whose
   * servers also die when the bench is killed.
   */
  startServer?: (args: string[]) => Promise<RedisServer>;
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterSet> {
  const startServer = opts.startServer ?? ((args: string[]) => startRedisServer({ args }));
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-cluster-'));
  const servers: RedisServer[] = [];
  const close = async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      // The cluster bus on a port of its own (not port + 10000, which may be taken or out of range).
      const bus = await freePort();
      servers.push(await startServer(['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--cluster-node-timeout', '1000', '--cluster-port', String(bus), '--dir', dir]));
    }
    await run('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
    await pollUntil(async () => ((await Promise.all(servers.map((s) => clusterOk(s.port)))).every(Boolean) ? true : undefined), 'every node to say cluster_state:ok', 30_000, 50);
    // A replica that has never synced with its master cannot replace it: wait for every replica's first sync.
    await pollUntil(async () => ((await Promise.all(servers.map((s) => synced(s.port)))).every(Boolean) ? true : undefined), 'every replica synced with its master', 30_000, 50);
  } catch (err) {
    await close();
    throw err;
  }

  const view = async (): Promise<NodeLine[]> => {
    for (const s of servers) {
      if (!s.running) continue;
      const text = await ask(s.port, 'CLUSTER', 'NODES').catch(() => undefined);
      if (typeof text === 'string') return parseNodes(text);
    }
    throw new Error('no node of the cluster answers');
  };
  const slotOf = async (key: string): Promise<number> => {
    const alive = servers.find((s) => s.running)!;
    return Number(await ask(alive.port, 'CLUSTER', 'KEYSLOT', key));
  };
  const masterOf = async (key: string): Promise<RedisServer> => {
    const slot = await slotOf(key);
    const owner = (await view()).find((n) => n.master && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
    const server = servers.find((s) => s.port === owner?.port);
    if (!server) throw new Error(`no master serves slot ${slot}`);
    return server;
  };

  return {
    nodes: servers.map((s) => `127.0.0.1:${s.port}`).join(','),
    servers,
    masterOf,
    async replicasOf(key) {
      const master = await masterOf(key);
      const nodes = await view();
      const id = nodes.find((n) => n.port === master.port)?.id;
      return nodes.filter((n) => !n.master && !n.failed && n.of === id).length;
    },
    async killMasterOf(key) {
      const killed = await masterOf(key);
      await killed.stop('SIGKILL');
      const promoted = pollUntil(
        async () => {
          const next = await masterOf(key).catch(() => undefined);
          if (!next || next === killed) return undefined;
          const ok = await Promise.all(servers.filter((s) => s.running).map((s) => clusterOk(s.port)));
          return ok.every(Boolean) ? next : undefined;
        },
        'a replica promoted and the cluster ok',
        30_000,
        50,
      );
      return { killed, promoted };
    },
    close,
  };
}

async function ask(port: number, ...args: string[]): Promise<unknown> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call(args[0]!, ...args.slice(1));
  } finally {
    c.disconnect();
  }
}

async function clusterOk(port: number): Promise<boolean> {
  const info = await ask(port, 'CLUSTER', 'INFO').catch(() => '');
  return typeof info === 'string' && info.includes('cluster_state:ok');
}

/** A master, or a replica whose link to its master is up. */
async function synced(port: number): Promise<boolean> {
  const info = await ask(port, 'INFO', 'replication').catch(() => '');
  return typeof info === 'string' && (info.includes('role:master') || info.includes('master_link_status:up'));
}
