// The processes under measurement: the project's mock upstream (and the bench's Anthropic, Gemini, tool-loop and Realtime mocks) and Jarvis (built,
// or from source for the smoke test). All listen on 127.0.0.1 only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { REPO_DIR, parentWatchPreload } from './preloads.js';
import { freePort, runToCompletion, spawnChild, type Child } from './processes.js';
import type { HttpTarget } from './stream-client.js';

/** Load client, mock and drivers share one CPU; the gateway under test gets the other. */
export const LOAD_CPU = 0;
export const GATEWAY_CPU = 1;

export interface Running {
  child: Child;
  origin: string;
  port: number;
}

export interface MockKnobs {
  tokens?: number;
  delayMs?: number;
  ttftMs?: number;
  /** Every tailEvery-th request waits tailTtftMs for its first token. */
  tailEvery?: number;
  tailTtftMs?: number;
}

export async function startMock(defaults: MockKnobs): Promise<Running & { baseUrl: string }> {
  const child = spawnChild(
    'mock',
    process.execPath,
    ['--import', 'tsx', '--import', parentWatchPreload(), 'fakes/openai/mock-cli.ts', '--port', '0', '--host', '127.0.0.1', '--defaults', JSON.stringify(defaults)],
    { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' },
  );
  const m = await child.waitForLine(/^MOCK_UPSTREAM_READY (http:\/\/127\.0\.0\.1:(\d+)\/v1)$/, 30_000);
  return { child, baseUrl: m[1]!, origin: new URL(m[1]!).origin, port: Number(m[2]) };
}

/**
 * The bench's Anthropic upstream (bench/anthropic-mock.ts): fakes/anthropic's events, paced as the OpenAI mock
 * paces its chunks, in a process of its own on the load CPU. `origin` is what an Anthropic upstream's baseUrl is.
 */
export async function startAnthropicMock(defaults: { tokens?: number; delayMs?: number }): Promise<Running> {
  const child = spawnChild(
    'anthropic-mock',
    process.execPath,
    ['--import', 'tsx', '--import', parentWatchPreload(), 'bench/anthropic-mock.ts', '--port', '0', '--host', '127.0.0.1', '--defaults', JSON.stringify(defaults)],
    { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' },
  );
  const m = await child.waitForLine(/^ANTHROPIC_MOCK_READY (http:\/\/127\.0\.0\.1:(\d+))$/, 30_000);
  return { child, origin: m[1]!, port: Number(m[2]) };
}

/**
 * The bench's Gemini upstream (bench/gemini-mock.ts): fakes/gemini's chunks, paced as the OpenAI mock paces its
 * chunks, in a process of its own on the load CPU. A Gemini upstream's baseUrl is `baseUrl` (the origin + /v1beta).
 */
export async function startGeminiMock(defaults: { tokens?: number; delayMs?: number; apiKey?: string }): Promise<Running & { baseUrl: string }> {
  const child = spawnChild(
    'gemini-mock',
    process.execPath,
    ['--import', 'tsx', '--import', parentWatchPreload(), 'bench/gemini-mock.ts', '--port', '0', '--host', '127.0.0.1', '--defaults', JSON.stringify(defaults)],
    { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' },
  );
  const m = await child.waitForLine(/^GEMINI_MOCK_READY (http:\/\/127\.0\.0\.1:(\d+))$/, 30_000);
  return { child, origin: m[1]!, baseUrl: `${m[1]!}/v1beta`, port: Number(m[2]) };
}

/**
 * Scenario 9's upstream (bench/tool-loop-mock.ts): an OpenAI upstream that answers with a function call while the
 * conversation holds fewer than `calls` tool results, then with text; in a process of its own on the load CPU.
 */
export async function startToolLoopMock(defaults: { calls?: number; tokens?: number; delayMs?: number }): Promise<Running & { baseUrl: string }> {
  const child = spawnChild(
    'tool-loop-mock',
    process.execPath,
    ['--import', 'tsx', '--import', parentWatchPreload(), 'bench/tool-loop-mock.ts', '--port', '0', '--host', '127.0.0.1', '--defaults', JSON.stringify(defaults)],
    { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' },
  );
  const m = await child.waitForLine(/^TOOL_LOOP_MOCK_READY (http:\/\/127\.0\.0\.1:(\d+))$/, 30_000);
  return { child, origin: m[1]!, baseUrl: `${m[1]!}/v1`, port: Number(m[2]) };
}

/**
 * Scenario 10's Realtime upstream (bench/realtime-mock.ts): the Realtime fake (fakes/realtime) in a process of its
 * own on the load CPU. `baseUrl` (http://127.0.0.1:PORT/v1) is an upstream's baseUrl; `url` is its WebSocket's base
 * (ws://127.0.0.1:PORT/v1: the socket is `${url}/realtime?model=`).
 */
export async function startRealtimeMock(): Promise<Running & { baseUrl: string; url: string }> {
  const child = spawnChild('realtime-mock', process.execPath, ['--import', 'tsx', '--import', parentWatchPreload(), 'bench/realtime-mock.ts'], { cpu: LOAD_CPU, cwd: REPO_DIR, stdout: 'lines' });
  const m = await child.waitForLine(/^REALTIME_MOCK_READY (http:\/\/127\.0\.0\.1:(\d+)\/v1)$/, 30_000);
  return { child, baseUrl: m[1]!, url: m[1]!.replace(/^http/, 'ws'), origin: new URL(m[1]!).origin, port: Number(m[2]) };
}

/**
 * The floor (bench/bare-relay.ts): node:http in, node:http out, the response piped through untouched. What it
 * costs is what any Node.js gateway pays on this machine before doing anything of its own.
 */
export async function startFloor(upstreamOrigin: string, nodeArgs: string[] = []): Promise<Running & { metricsUrl: string; stop(): Promise<void> }> {
  const child = spawnChild('floor', process.execPath, [...nodeArgs, '--import', 'tsx', '--import', parentWatchPreload(), 'bench/bare-relay.ts', '--port', '0', '--upstream', upstreamOrigin], {
    cpu: GATEWAY_CPU,
    cwd: REPO_DIR,
    stdout: 'lines',
  });
  const m = await child.waitForLine(/^BARE_RELAY_READY (http:\/\/127\.0\.0\.1:(\d+))$/, 30_000);
  return { child, origin: m[1]!, port: Number(m[2]), metricsUrl: `${m[1]!}/metrics`, stop: () => child.stop(5000) };
}

export type JarvisFrom = 'dist' | 'source';

/** `npm run build` once per bench; resolves with an error message on failure. */
export async function buildJarvis(): Promise<string | undefined> {
  const r = await runToCompletion('npm', ['run', 'build'], { cwd: REPO_DIR, timeoutMs: 180_000 });
  return r.code === 0 ? undefined : `npm run build failed (${r.code}):\n${r.output.slice(-2000)}`;
}

export interface RunningJarvis extends Running {
  logFile: string;
  metricsUrl: string;
  stop(): Promise<void>;
}

/**
 * Jarvis as operators run it: default log level (info), log to a temp file, stdout to /dev/null. `env` adds
 * settings (e.g. for a scenario that needs a longer upstream idle time); `cwd` runs another checkout's build (its
 * dist/main.js), e.g. the build before a change; `cpu` pins it elsewhere than the gateway CPU (null: not pinned,
 * e.g. for JARVIS_WORKERS, whose workers inherit the primary's CPUs).
 */
export async function startJarvis(opts: { upstreamBaseUrl: string; from: JarvisFrom; env?: Record<string, string>; nodeArgs?: string[]; cwd?: string; cpu?: number | null }): Promise<RunningJarvis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-bench-'));
  const logFile = join(dir, 'system.log');
  const env: NodeJS.ProcessEnv = {};
  // Nothing from the caller's JARVIS_* environment leaks into the gateway under test.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('JARVIS_') && k !== 'HOST' && k !== 'PORT') env[k] = v;
  Object.assign(env, {
    HOST: '127.0.0.1',
    PORT: String(port),
    JARVIS_UPSTREAM_BASE_URL: opts.upstreamBaseUrl,
    JARVIS_DEFAULT_MODEL: 'mock-model',
    JARVIS_LOG_FILE: logFile,
    // The embedded ledger (on by default, as an operator runs it) in the run's own folder, not the checkout's data/.
    JARVIS_DATA_DIR: dir,
    ...opts.env,
  });
  const entry = opts.from === 'dist' ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts'];
  const child = spawnChild('jarvis', process.execPath, [...(opts.nodeArgs ?? []), '--import', parentWatchPreload(), ...entry], { cpu: opts.cpu === undefined ? GATEWAY_CPU : (opts.cpu ?? undefined), cwd: opts.cwd ?? REPO_DIR, env, stdout: 'ignore' });
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${origin}/healthz`, child, 30_000);
  } catch (err) {
    await child.stop(1000);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    child,
    origin,
    port,
    logFile,
    metricsUrl: `${origin}/metrics`,
    async stop() {
      await child.stop(5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `url` until it answers 2xx, the process exits, or `timeoutMs` passes. */
export async function waitForHttp(url: string, child: Child, timeoutMs: number, accept: (status: number) => boolean = (s) => s >= 200 && s < 300): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | undefined;
  void child.exited.then((code) => (exited = code));
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (exited !== undefined) throw new Error(`${child.name} exited (${exited}) during start-up; stderr: ${child.stderrTail().slice(-1500)}`);
    try {
      const res = await request(url, { method: 'GET', signal: AbortSignal.timeout(2000) });
      await res.body.dump();
      if (accept(res.statusCode)) return;
    } catch {
      // not listening yet
    }
    await sleep(Math.min(50 * (attempt + 1), 250));
  }
  throw new Error(`${child.name} did not answer ${url} within ${timeoutMs} ms; stderr: ${child.stderrTail().slice(-1500)}`);
}

export function directTarget(mockOrigin: string): HttpTarget {
  return { origin: mockOrigin, path: '/v1/chat/completions', headers: {} };
}

export function jarvisTarget(origin: string): HttpTarget {
  return { origin, path: '/v1/chat/completions', headers: {} };
}
