// The peer gateway: Portkey's open-source gateway, installed by the bench into bench/.cache/portkey (never a
// project dependency) and forced onto 127.0.0.1 by a preload. Any failure makes the peer "unavailable" with a
// reason; the bench goes on without it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, loopbackListenPreload, parentWatchPreload } from './preloads.js';
import { freePort, runToCompletion, spawnChild } from './processes.js';
import type { HttpTarget } from './stream-client.js';
import { GATEWAY_CPU, waitForHttp, type Running } from './targets.js';

export const PEER_NAME = 'Portkey gateway';
export const PEER_VERSION = '1.15.2';
// 1.19.x of @hono/node-server breaks this gateway with `TypeError: immutable` (Portkey-AI/gateway#1389).
const HONO_NODE_SERVER = '1.13.5';

const PEER_DIR = join(CACHE_DIR, 'portkey');
const PACKAGE_DIR = join(PEER_DIR, 'node_modules', '@portkey-ai', 'gateway');
const ENTRY = join(PACKAGE_DIR, 'build', 'start-server.js');

const PACKAGE_JSON = {
  name: 'jarvis-bench-peer',
  private: true,
  description: 'Written by bench/peer.ts: the peer gateway for npm run bench. Not a project dependency.',
  dependencies: { '@portkey-ai/gateway': PEER_VERSION },
  overrides: { '@hono/node-server': HONO_NODE_SERVER },
};

function installedVersion(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function isInstalled(): boolean {
  return (
    existsSync(ENTRY) &&
    installedVersion(PACKAGE_DIR) === PEER_VERSION &&
    installedVersion(join(PEER_DIR, 'node_modules', '@hono', 'node-server')) === HONO_NODE_SERVER
  );
}

/** Installs the peer into the cache folder if needed; resolves with a reason when it cannot be had. */
export async function ensurePeer(log: (msg: string) => void): Promise<string | undefined> {
  if (isInstalled()) return undefined;
  mkdirSync(PEER_DIR, { recursive: true });
  writeFileSync(join(PEER_DIR, 'package.json'), `${JSON.stringify(PACKAGE_JSON, null, 2)}\n`);
  log(`installing @portkey-ai/gateway@${PEER_VERSION} into ${PEER_DIR} ...`);
  const r = await runToCompletion('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: PEER_DIR, timeoutMs: 300_000 });
  if (r.code !== 0) return `npm install failed (${r.code}): ${r.output.slice(-600).trim()}`;
  return isInstalled() ? undefined : `installed, but not as pinned (@portkey-ai/gateway ${PEER_VERSION}, @hono/node-server ${HONO_NODE_SERVER})`;
}

/** The listening sockets of this port per /proc/net/tcp{,6}: every one must be on loopback. */
function listensOnLoopbackOnly(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let found = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (!local || cols[3] !== '0A' || !local.endsWith(`:${hexPort}`)) continue;
      found++;
      const addr = local.slice(0, local.indexOf(':'));
      const loopback = addr === '0100007F' || addr === '00000000000000000000000001000000';
      if (!loopback) return false;
    }
  }
  return found > 0;
}

export interface RunningPeer extends Running {
  stop(): Promise<void>;
}

export async function startPeer(): Promise<RunningPeer> {
  const port = await freePort();
  const env = { ...process.env, NODE_ENV: 'production' };
  const child = spawnChild('peer', process.execPath, ['--import', parentWatchPreload(), '--import', loopbackListenPreload(), ENTRY, `--port=${port}`, '--headless'], {
    cpu: GATEWAY_CPU,
    cwd: PEER_DIR,
    env,
    stdout: 'ignore',
  });
  const origin = `http://127.0.0.1:${port}`;
  try {
    // Any HTTP answer means it is up (its root path answers 200).
    await waitForHttp(`${origin}/`, child, 30_000, () => true);
    if (!listensOnLoopbackOnly(port)) throw new Error(`${PEER_NAME} is not listening on 127.0.0.1 only; stopped it`);
  } catch (err) {
    await child.stop(1000);
    throw err;
  }
  return { child, origin, port, stop: () => child.stop(5000) };
}

/** Requests through the peer go to the mock upstream as an OpenAI provider with a custom host. */
export function peerTarget(origin: string, mockBaseUrl: string): HttpTarget {
  return {
    origin,
    path: '/v1/chat/completions',
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': mockBaseUrl, authorization: 'Bearer sk-bench-not-a-key' },
  };
}
