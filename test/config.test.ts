// Configuration as an operator meets it: a bad value stops the process with one line, a YAML file routes models.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from '../fakes/openai/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// `npx tsx` without npx: npm itself may print warnings about the machine's npm config on stderr.
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

describe('the jarvis process', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    // Only if the test failed with it still running (it would be serving on a real port).
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('exits non-zero with one line on stderr when PORT is not a number', async () => {
    // Only this test's setting: no JARVIS_* from the surrounding environment may change the outcome.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JARVIS_') && k !== 'PORT' && k !== 'HOST'));
    child = spawn(process.execPath, [tsxCli, 'src/main.ts'], { cwd: root, env: { ...env, PORT: 'abc' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child!.once('close', (c) => resolve(c)));

    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    const lines = stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^jarvis: invalid configuration: .*PORT.*"abc"/);
    expect(stdout).toBe('');
  });
});

/** Runs the jarvis process with only `vars` set (no JARVIS_* from the surrounding environment) until it exits. */
async function runJarvis(vars: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JARVIS_') && !['PORT', 'HOST', 'REDIS_URL'].includes(k)));
  const child = spawn(process.execPath, [tsxCli, 'src/main.ts'], { cwd: root, env: { ...env, ...vars }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // A process that did not refuse its configuration would serve: the test kills it and fails on the exit code.
  const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(kill);
  return { code, stdout, stderr };
}

describe('a configuration error on stderr', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jarvis-secrets-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('never holds a secret given to a secret-bearing setting, and names where the mistake is', async () => {
    const SECRET = 'sk-SECRET-b71e09';
    const file = async (name: string, content: unknown) => {
      const path = join(dir, name);
      await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
      return path;
    };
    const cases: [string, Record<string, string>, RegExp][] = [
      ['upstreams as a map', { JARVIS_CONFIG: await file('map.json', { upstreams: { primary: { baseUrl: 'http://127.0.0.1:1/v1', apiKey: SECRET } } }) }, /upstreams: /],
      ['a numeric apiKey', { JARVIS_CONFIG: await file('num.json', { upstreams: [{ name: 'a', baseUrl: 'http://127.0.0.1:1/v1', models: ['m'], apiKey: 90210902109021 }] }) }, /upstreams\.0\.apiKey: /],
      ['a key entry as a map', { JARVIS_CONFIG: await file('keys.json', { access: { keys: { alice: SECRET } } }) }, /access\.keys: /],
      ['a short key in a keys file', { JARVIS_KEYS_FILE: await file('keys-file.json', [{ name: 'alice', key: 'sk-SEC' }]) }, /access\.keys\.0\.key: /],
      ['a sha256 that is not one', { JARVIS_KEYS_FILE: await file('sha.json', [{ name: 'alice', sha256: SECRET }]) }, /access\.keys\.0\.sha256: /],
      ['a REDIS_URL typo', { REDIS_URL: `redis//:${SECRET}@127.0.0.1:6379` }, /redis\.url: /],
      ['a REDIS_URL that does not parse', { REDIS_URL: `redis://:${SECRET}@[127.0.0.1:6379` }, /redis\.url: not a URL/],
      ['an upstream URL with credentials', { JARVIS_UPSTREAM_BASE_URL: `ftp://user:${SECRET}@127.0.0.1/v1`, JARVIS_DEFAULT_MODEL: 'm' }, /baseUrl: /],
      ['a JARVIS_API_KEYS key too short', { JARVIS_API_KEYS: 'alice=sk-SEC' }, /JARVIS_API_KEYS entry 1/],
      ['a broken config file holding a key', { JARVIS_CONFIG: await file('broken.json', `{"upstreams": [{"apiKey": "${SECRET}" oops}]}`) }, /cannot parse JARVIS_CONFIG/],
    ];
    const runs = await Promise.all(cases.map(async ([what, vars, names]) => ({ what, names, ...(await runJarvis(vars)) })));
    for (const { what, names, code, stdout, stderr } of runs) {
      expect(code, what).toBe(2);
      expect(stderr.split('\n').filter(Boolean), what).toEqual([expect.stringMatching(names)]);
      for (const secret of [SECRET, 'sk-SEC', '90210902109021']) expect(stderr + stdout, `${what}: ${stderr}`).not.toContain(secret);
    }
  }, 60_000);
});

describe('a start', () => {
  it('logs nothing outside the vocabulary: no false event_loop_blocked, no framework line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jarvis-start-'));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JARVIS_') && !['PORT', 'HOST', 'REDIS_URL'].includes(k)));
    const child = spawn(process.execPath, [tsxCli, 'src/main.ts'], { cwd: root, env: { ...env, PORT: '0', JARVIS_LOG_FILE: join(dir, 'system.log'), JARVIS_DATA_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const listening = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = / jarvis_listening .*address=(\S+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      child.once('close', () => reject(new Error(`exited before listening: ${stdout}`)));
    });
    try {
      const address = await listening;
      expect((await fetch(`${address}/healthz`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('close', resolve));
      await rm(dir, { recursive: true, force: true });
    }
    const doc = await readFile(join(root, 'docs/streaming.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
    const names = stdout.split('\n').filter(Boolean).map((line) => line.split(' ')[2]!);
    expect(names).toContain('jarvis_listening');
    expect(names.filter((n) => !documented.has(n)), stdout).toEqual([]);
    expect(names).not.toContain('event_loop_blocked');
  }, 30_000);
});

describe('a YAML config file routing two models to two upstreams', () => {
  let dir: string;
  let local: MockUpstream;
  let cloud: MockUpstream;
  let jarvis: TestJarvis;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jarvis-yaml-'));
    [local, cloud] = await Promise.all([startMockUpstream(), startMockUpstream()]);
    const path = join(dir, 'jarvis.yaml');
    await writeFile(
      path,
      `defaultModel: small
upstreams:
  - name: local
    baseUrl: ${local.url}
    models: [small]
  - name: cloud
    baseUrl: ${cloud.url}
    apiKey: sk-cloud-secret
    models: [large]
`,
    );
    const config = loadConfig({ JARVIS_CONFIG: path });
    jarvis = await startJarvis({ upstreams: config.upstreams, defaultModel: config.defaultModel, simulator: { tokensPerSec: 2000, ttftMs: 0 } });
  });
  afterAll(async () => {
    await jarvis.close();
    await Promise.all([local.close(), cloud.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('sends each model to its own upstream, with that upstream’s key', async () => {
    for (const [model, text] of [['small', 'local'], ['large', 'cloud']]) {
      const res = await postChat(jarvis.url, { model, messages: user(`hi tokens:1 text:${text}`) });
      expect(await res.json()).toMatchObject({ model, choices: [{ message: { content: `${text}0 ` } }] });
    }
    expect(local.requests.map((r) => r.body.model)).toEqual(['small']);
    expect(cloud.requests.map((r) => r.body.model)).toEqual(['large']);
    expect(local.requests[0]!.headers.authorization).toBeUndefined();
    expect(cloud.requests[0]!.headers.authorization).toBe('Bearer sk-cloud-secret');
  });

  it('serves the default model when none is named, lists both, and knows no others', async () => {
    const res = await postChat(jarvis.url, { messages: user('hi tokens:1') });
    expect(await res.json()).toMatchObject({ model: 'small' });
    expect(local.requests.at(-1)!.body.model).toBe('small');

    const models = (await (await fetch(`${jarvis.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['jarvis-sim', 'small', 'large']));

    const unknown = await postChat(jarvis.url, { model: 'medium', messages: user('hi') });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'model_not_found', param: 'model' } });
  });
});
