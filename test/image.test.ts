// Jarvis shipped as an image, tested without a Docker daemon: the Dockerfile's shape; its runtime stage's install
// done as the file says (its COPYs and its `npm ci` line, read out of it) in a clean folder outside the repository,
// and Jarvis started from that folder, serving a chat, the console and the ledger with production dependencies
// only; and the deployment files (Dockerfile, docker-compose.yml, the Helm chart) asking only what Jarvis knows:
// every variable they set is one Jarvis reads, every health check and probe path answers.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { defaultConfig } from '../src/config.js';
import { sseData } from './support/sse.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { freePort } from './support/redis-server.js';
import { copyOf, envOf, flagsOf, installStage, instructionsOf, npmCiCommands, parseDockerfile, run, wordsOf, type StageInstall } from './support/dockerfile.js';
import { CHART, chartFiles, jarvisServices, knownVariables, probes, readCompose, settingsSet, unbalancedActions, valuesRead, variablesMentioned } from './support/deploy-files.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const docker = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = docker.stages.at(-1)!;
const build = docker.stages[0]!;

describe('the Dockerfile', () => {
  it('builds in one stage and runs in another: Node LTS slim, production dependencies only, the node user, node dist/main.js, a health check on /healthz, /data a volume', () => {
    expect(docker.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of docker.stages) expect(stage.from).toMatch(/^node:(24|22)-bookworm-slim$/);
    // The build stage installs everything and compiles.
    expect(instructionsOf(build, 'RUN').flatMap(npmCiCommands).some((c) => !c.includes('--omit=dev'))).toBe(true);
    expect(instructionsOf(build, 'RUN').some((i) => /\bnpm run build\b/.test(i.args))).toBe(true);
    // The runtime stage: production dependencies, the build's dist/, no source, no compiler.
    const npmCi = instructionsOf(runtime, 'RUN').flatMap(npmCiCommands);
    expect(npmCi).toHaveLength(1);
    expect(npmCi[0]).toContain('--omit=dev');
    const copies = instructionsOf(runtime, 'COPY').map(copyOf);
    expect(copies.find((c) => c.from === build.name)?.sources).toEqual(['/app/dist']);
    expect(copies.flatMap((c) => c.sources)).not.toContain('src');
    expect(instructionsOf(runtime, 'RUN').some((i) => /\bnpm run build\b|\btsc\b/.test(i.args))).toBe(false);
    // Runs unprivileged, as node itself (PID 1 gets SIGTERM), with its data in a volume and listening on all interfaces.
    expect(instructionsOf(runtime, 'USER').at(-1)?.args).toBe('node');
    expect(wordsOf(instructionsOf(runtime, 'CMD').at(-1)!.args)).toEqual(['node', 'dist/main.js']);
    expect(instructionsOf(runtime, 'VOLUME').map((i) => i.args)).toContain('/data');
    const env = envOf(runtime);
    expect(env).toMatchObject({ HOST: '0.0.0.0', JARVIS_DATA_DIR: '/data' });
    const healthcheck = instructionsOf(runtime, 'HEALTHCHECK');
    expect(healthcheck).toHaveLength(1);
    const cmd = flagsOf(healthcheck[0]!.args).rest.replace(/^CMD\s+/, '');
    expect(wordsOf(cmd)[0]).toBe('node');
    expect(cmd).toContain('/healthz');
  });

  it('.dockerignore keeps dependencies, builds, data, logs and git out of the context, and nothing a COPY needs', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const path of ['node_modules', 'dist', 'data', 'logs', '.git', '.env']) expect(ignored).toContain(path);
    expect(ignored.some((p) => p === 'bench' || p === 'bench/.cache')).toBe(true);
    const fromContext = docker.stages.flatMap((s) => instructionsOf(s, 'COPY').map(copyOf)).filter((c) => c.from === undefined).flatMap((c) => c.sources);
    for (const source of fromContext) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      // Only plain names and folder prefixes are used in the file: a source under an ignored entry would be missing.
      expect(ignored.filter((p) => source === p || source.startsWith(`${p}/`)), source).toEqual([]);
    }
  });
});

/** The environment for npm: the machine's (registry, cache, PATH), without what `npm test` says about this repository. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_package_|npm_lifecycle_|npm_config_local_prefix$|npm_command$|INIT_CWD$|NODE_ENV$|VITEST)/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

describe('the runtime stage installed as the Dockerfile does it, in a clean folder, and Jarvis started from it', () => {
  let dir: string;
  let app: string;
  let data: string;
  let install: StageInstall;
  let child: ChildProcess;
  let url: string;
  let stdout = '';
  let stderr = '';
  let exited: Promise<number | null>;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    const started = performance.now();
    dir = await mkdtemp(join(tmpdir(), 'jarvis-image-'));
    app = join(dir, 'app');
    data = join(dir, 'data');
    // What the build stage makes (dist/), compiled while npm installs: the build's own tsconfig, a private outDir.
    const distDir = join(dir, 'build-dist');
    const tsc = (async () => {
      const t = performance.now();
      await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', distDir], { cwd: ROOT, env: process.env, timeoutMs: 180_000 });
      timings.tscMs = Math.round(performance.now() - t);
      return distDir;
    })();
    tsc.catch(() => {});
    install = await installStage(runtime, { context: ROOT, dir: app, built: { '/app/dist': () => tsc }, env: npmEnv(), npmTimeoutMs: 180_000 });
    await tsc;
    timings.installMs = Math.round(performance.now() - started);

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // The image's environment, with a loopback address (no keys in a test), a free port and a temporary /data.
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      ...envOf(runtime),
      HOST: '127.0.0.1',
      PORT: String(port),
      JARVIS_DATA_DIR: data,
      JARVIS_SIM_TOKENS_PER_SEC: '1000',
      JARVIS_SIM_TTFT_MS: '0',
      JARVIS_LEDGER_FLUSH_MS: '50',
    };
    const t = performance.now();
    const [command, ...args] = wordsOf(instructionsOf(runtime, 'CMD').at(-1)!.args);
    child = spawn(command === 'node' ? process.execPath : command!, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`jarvis exited during start (${child.exitCode}): ${stderr}\n${stdout}`);
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`jarvis did not answer /healthz within 20 s: ${stderr}\n${stdout}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    timings.startMs = Math.round(performance.now() - t);
    console.info(`image test: install ${timings.installMs} ms (npm ci ${install.npmMs.join(', ')} ms, tsc ${timings.tscMs} ms), start ${timings.startMs} ms`);
  }, 300_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });

  it('did the stage as written: its COPYs in order, its npm ci line, and nothing above the folder lends a module', () => {
    expect(install.npmCi).toEqual(instructionsOf(runtime, 'RUN').flatMap(npmCiCommands));
    expect(install.copied).toEqual(expect.arrayContaining(['package.json -> .', 'package-lock.json -> .', 'build:/app/dist -> dist', 'console -> console']));
    // Node looks for node_modules in every folder above: none there may hold what the image would not.
    for (let d = dirname(app); ; d = dirname(d)) {
      expect(existsSync(join(d, 'node_modules')), join(d, 'node_modules')).toBe(false);
      if (dirname(d) === d) break;
    }
    expect(app.startsWith(ROOT.replace(/[\\/]$/, '') + sep)).toBe(false);
  });

  it('holds the production dependencies and no dev dependency', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', name, 'package.json')), name).toBe(true);
    // The lock file says which packages only the dev dependencies need (`dev: true`): none is installed. (A package
    // that is both, like ws, which @fastify/websocket needs, is a production one.)
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && p.dev);
    expect(devOnly.length).toBeGreaterThan(10);
    expect(devOnly.map(([path]) => path).filter((path) => existsSync(join(app, path)))).toEqual([]);
    const production = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && !p.dev && !p.optional);
    expect(production.map(([path]) => path).filter((path) => !existsSync(join(app, path)))).toEqual([]);
    expect(existsSync(join(app, 'dist/main.js'))).toBe(true);
    expect(existsSync(join(app, 'dist/ledger/stores/embedded-worker.js'))).toBe(true);
    expect(existsSync(join(app, 'src'))).toBe(false);
  });

  it('answers /healthz, with the embedded ledger in JARVIS_DATA_DIR, and logs to stdout', async () => {
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    const health = (await res.json()) as { status: string; ledger: { store?: string } };
    expect(health.status).toBe('ok');
    expect(health.ledger.store).toBe('embedded');
    // JARVIS_LOG_FILE is the image's (/dev/null): the lines are on stdout (written within a few ms of being logged).
    for (let i = 0; i < 100 && !stdout.includes('jarvis_listening'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(stdout).toContain('jarvis_listening');
  });

  let requestId = '';

  it('streams a chat completion from the simulator', async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': 'image-test' },
      body: JSON.stringify({ model: 'jarvis-sim', stream: true, messages: [{ role: 'user', content: 'Tell me about rivers' }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    requestId = res.headers.get('x-request-id') ?? '';
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as { choices: { delta: { content?: string }; finish_reason: string | null }[] });
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('').length).toBeGreaterThan(10);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
  });

  it('serves the console and every asset the page loads (its own files next to dist/, the libraries from node_modules)', async () => {
    const page = await fetch(`${url}/console`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const assets = [...new Set([...html.matchAll(/["'](\/console\/assets\/[^"']+)["']/g)].map((m) => m[1]!))];
    expect(assets).toEqual(expect.arrayContaining(['/console/assets/app.js', '/console/assets/console.css', '/console/assets/preact.mjs', '/console/assets/htm.mjs', '/console/assets/uplot.mjs']));
    for (const asset of assets) {
      const res = await fetch(`${url}${asset}`);
      expect(res.status, asset).toBe(200);
      expect(res.headers.get('content-type'), asset).toMatch(/^text\/(javascript|css)/);
      expect((await res.text()).length, asset).toBeGreaterThan(100);
    }
  });

  it('writes the usage ledger: GET /v1/usage/records shows the chat, in JARVIS_DATA_DIR/ledger.sqlite', async () => {
    expect(requestId).toMatch(/^req_/);
    const res = await fetch(`${url}/v1/usage/records?request_id=${requestId}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { request_id: string; provider: string; outcome: string; session: string }[] };
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ request_id: requestId, provider: 'simulator', outcome: 'end', session: 'image-test' });
    expect(existsSync(join(data, 'ledger.sqlite'))).toBe(true);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('the deployment files ask only what Jarvis knows', () => {
  const known = knownVariables(ROOT);

  it('every variable the Dockerfile, the compose file and the chart set is one Jarvis reads', () => {
    const set = settingsSet(ROOT);
    // The parse found what the files set (a parser that finds nothing would pass anything).
    expect(set.map((s) => s.name)).toEqual(expect.arrayContaining(['JARVIS_API_KEYS', 'REDIS_URL', 'JARVIS_DATABASE_URL', 'JARVIS_DATA_DIR', 'HOST', 'PORT', 'JARVIS_SHUTDOWN_GRACE_MS', 'JARVIS_INSTANCE_ID']));
    expect(set.some((s) => s.where.startsWith('docker-compose.yml'))).toBe(true);
    expect(set.some((s) => s.where.startsWith(`${CHART}/templates`))).toBe(true);
    expect(set.some((s) => s.where.startsWith(`${CHART}/values.yaml`))).toBe(true);
    // NODE_ENV is Node's and npm's, set by the Dockerfile for the install; every other name is Jarvis's.
    const unknown = set.filter((s) => s.name !== 'NODE_ENV' && !known.has(s.name));
    expect(unknown).toEqual([]);
  });

  it('every JARVIS_, REDIS_ and OTEL_ name written anywhere in them, comments included, is one Jarvis reads', () => {
    const mentioned = variablesMentioned(ROOT);
    expect(mentioned.length).toBeGreaterThan(10);
    expect(mentioned.filter((s) => !known.has(s.name))).toEqual([]);
  });

  describe('on a running Jarvis', () => {
    let jarvis: TestJarvis;
    beforeAll(async () => {
      jarvis = await startJarvis();
    });
    afterAll(async () => {
      await jarvis?.close();
    });

    it('every health check and probe path answers (200, or 503 for a readiness check), never 404', async () => {
      const all = probes(ROOT);
      const where = all.map((p) => p.where).join('\n');
      // Found in each file: the Dockerfile, the compose file's Jarvis services and nginx, the chart's two probes.
      expect(where).toMatch(/Dockerfile HEALTHCHECK/);
      for (const [service] of jarvisServices(ROOT)) expect(where).toContain(`services.${service}.healthcheck`);
      expect(where).toContain('services.nginx.healthcheck');
      expect(all.filter((p) => p.where.includes(CHART)).map((p) => p.path).sort()).toEqual(['/healthz', '/readyz']);
      for (const probe of all) {
        const res = await fetch(`${jarvis.url}${probe.path}`);
        await res.arrayBuffer();
        expect(res.status, `${probe.path} (${probe.where})`).not.toBe(404);
        expect(probe.path === '/readyz' ? [200, 503] : [200], `${probe.path} (${probe.where})`).toContain(res.status);
      }
    });
  });

  it('give running streams their grace: the compose stop period and the pod termination period exceed JARVIS_SHUTDOWN_GRACE_MS', () => {
    const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);
    for (const [service, s] of jarvisServices(ROOT)) {
      const env = s.environment as Record<string, string>;
      const graceMs = Number(env.JARVIS_SHUTDOWN_GRACE_MS ?? defaultConfig().shutdownGraceMs);
      expect(seconds(String(s.stop_grace_period)) * 1000, service).toBeGreaterThan(graceMs + 5000);
    }
    const values = parseYaml(readFileSync(join(ROOT, CHART, 'values.yaml'), 'utf8')) as { terminationGracePeriodSeconds: number; preStopSleepSeconds: number; config: Record<string, string> };
    const graceMs = Number(values.config.JARVIS_SHUTDOWN_GRACE_MS ?? defaultConfig().shutdownGraceMs);
    // The close after the grace (the ledger's last lines, spans) takes up to 5 s (docs/operations.md, "Rolling restarts").
    expect(values.terminationGracePeriodSeconds * 1000).toBeGreaterThan(values.preStopSleepSeconds * 1000 + graceMs + 5000);
    expect(values.preStopSleepSeconds).toBeGreaterThan(0);
  });

  it('the chart: Chart.yaml and values.yaml parse, every template closes what it opens, every .Values path a template reads exists', () => {
    const chart = parseYaml(readFileSync(join(ROOT, CHART, 'Chart.yaml'), 'utf8')) as { apiVersion: string; name: string; version: string; appVersion: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'jarvis' });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
    const values = parseYaml(readFileSync(join(ROOT, CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const files = chartFiles(ROOT).filter((f) => f.path.includes('/templates/'));
    expect(files.map((f) => f.path.split('/').at(-1)).sort()).toEqual(['_helpers.tpl', 'configmap.yaml', 'deployment.yaml', 'hpa.yaml', 'pdb.yaml', 'secret.yaml', 'service.yaml']);
    for (const { path, text } of files) {
      expect(unbalancedActions(text), path).toBeUndefined();
      for (const read of valuesRead(text)) {
        let v: unknown = values;
        for (const part of read.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
        expect(v, `${path}: .Values.${read}`).not.toBeUndefined();
      }
    }
    const deployment = files.find((f) => f.path.endsWith('deployment.yaml'))!.text;
    for (const want of ['livenessProbe:', 'readinessProbe:', 'preStop:', 'terminationGracePeriodSeconds:', 'configMapRef:', 'jarvis.secretEnv']) expect(deployment).toContain(want);
  });

  it('the compose file: two Jarvis instances on Redis and PostgreSQL behind nginx, with keys the operator must set', () => {
    const compose = readCompose(ROOT);
    const services = jarvisServices(ROOT);
    expect(services).toHaveLength(2);
    for (const [, s] of services) {
      const env = s.environment as Record<string, string>;
      expect(env.REDIS_URL).toMatch(/^redis:\/\/redis:/);
      expect(env.JARVIS_DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\//);
      // Required from the operator's .env: compose refuses to start without it, and no default key ships.
      expect(env.JARVIS_API_KEYS).toMatch(/^\$\{JARVIS_API_KEYS:\?/);
      expect(s.healthcheck?.test).toBeDefined();
    }
    expect(Object.keys(compose.services).sort()).toEqual(['jarvis-1', 'jarvis-2', 'nginx', 'postgres', 'redis']);
    const nginx = compose.services.nginx!;
    expect(nginx.volumes).toEqual(expect.arrayContaining([expect.stringMatching(/^\.\/deploy\/nginx\/jarvis\.conf:/)]));
  });
});
