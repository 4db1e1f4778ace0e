// A PostgreSQL database of a test's own on the machine's server (trust auth on 127.0.0.1:5432, or
// JARVIS_TEST_POSTGRES_URL), created empty and dropped after, so tests never see each other's rows.
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import pg from 'pg';

export interface FreshDatabase {
  readonly name: string;
  /** postgres://user@host:port/jarvis_test_... */
  readonly url: string;
  /** Drops it, ending any connection still open to it. */
  drop(): Promise<void>;
}

/** The server's maintenance database, with a user: pg sends none when USER is unset (as under CI) and is refused. */
export function adminUrl(): string {
  const url = new URL(process.env.JARVIS_TEST_POSTGRES_URL ?? process.env.JARVIS_BENCH_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/postgres');
  if (!url.username) url.username = process.env.PGUSER ?? process.env.USER ?? userInfo().username;
  return url.href;
}

async function admin<T>(body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/** An empty database named `<prefix>_<random>` (the bench uses jarvis_bench). */
export async function freshDatabase(prefix = 'jarvis_test'): Promise<FreshDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    name,
    url: url.href,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** Ends every other connection to the database at `url`, as a server restart or a network cut would. */
export async function terminateOtherConnections(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ ended: boolean }>(
      'SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    return rows.filter((r) => r.ended).length;
  } finally {
    await client.end();
  }
}

export interface PostgresProxy {
  /** The same database as the URL given, through the proxy. */
  readonly url: string;
  /** Stops forwarding both ways with every connection left open: a server that hangs. */
  freeze(): void;
  /** Closes every connection and stops listening: a server that went away (connections refused). */
  cut(): Promise<void>;
}

/** A loopback TCP proxy in front of the server at `url`, to stop or freeze the server for one client only. */
export async function startPostgresProxy(url: string): Promise<PostgresProxy> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  let frozen = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (frozen) return;
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk) => frozen || upstream.write(chunk));
    upstream.on('data', (chunk) => frozen || client.write(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as { port: number }).port);
  return {
    url: proxied.href,
    freeze: () => void (frozen = true),
    cut: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
