// Configuration as an operator meets it: a bad value stops the process with one line, a YAML file routes models.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream, type MockUpstream } from './support/mock-upstream.js';

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
      const res = await postChat(jarvis.url, { model, messages: user('hi'), mock: { tokens: 1, text } });
      expect(await res.json()).toMatchObject({ model, choices: [{ message: { content: `${text}0 ` } }] });
    }
    expect(local.requests.map((r) => r.body.model)).toEqual(['small']);
    expect(cloud.requests.map((r) => r.body.model)).toEqual(['large']);
    expect(local.requests[0]!.headers.authorization).toBeUndefined();
    expect(cloud.requests[0]!.headers.authorization).toBe('Bearer sk-cloud-secret');
  });

  it('serves the default model when none is named, lists both, and knows no others', async () => {
    const res = await postChat(jarvis.url, { messages: user('hi'), mock: { tokens: 1 } });
    expect(await res.json()).toMatchObject({ model: 'small' });
    expect(local.requests.at(-1)!.body.model).toBe('small');

    const models = (await (await fetch(`${jarvis.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['jarvis-sim', 'small', 'large']));

    const unknown = await postChat(jarvis.url, { model: 'medium', messages: user('hi') });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'model_not_found', param: 'model' } });
  });
});
