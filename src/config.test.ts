import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig, loadConfig, makeConfig } from './config.js';
import { configError, configFiles } from '../test/support/config.js';

const files = configFiles('jarvis-config-');
afterAll(() => files.remove());
const file = files.file;

describe('loadConfig', () => {
  it('gives the embedded defaults for an empty environment: the simulator on loopback', () => {
    const config = loadConfig({});
    expect(config).toEqual(defaultConfig());
    expect(config).toMatchObject({ host: '127.0.0.1', port: 8000, defaultModel: 'jarvis-sim', upstreams: [], apiKeys: [] });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', HOST: '', JARVIS_API_KEYS: '' })).toEqual(defaultConfig());
  });

  it('takes overrides from the environment', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      PORT: '9001',
      JARVIS_API_KEYS: 'first-key-123, second-key-456,',
      JARVIS_LOG_LEVEL: 'debug',
      JARVIS_LOG_FORMAT: 'json',
      JARVIS_SHUTDOWN_GRACE_MS: '2500',
      JARVIS_SIM_TOKENS_PER_SEC: '12.5',
      JARVIS_SIM_TTFT_MS: '0',
      JARVIS_SESSION_POLICY: 'queue',
      JARVIS_FLUSH_MS: '20',
    });
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 9001,
      apiKeys: ['first-key-123', 'second-key-456'],
      log: { level: 'debug', format: 'json', file: defaultConfig().log.file },
      shutdownGraceMs: 2500,
      simulator: { tokensPerSec: 12.5, ttftMs: 0 },
      sessions: { policy: 'queue', prevStreamWaitMs: defaultConfig().sessions.prevStreamWaitMs },
      events: { ...defaultConfig().events, flushMs: 20 },
    });
  });

  it('adds one catch-all upstream from JARVIS_UPSTREAM_BASE_URL and JARVIS_DEFAULT_MODEL', () => {
    const config = loadConfig({
      JARVIS_UPSTREAM_BASE_URL: 'http://127.0.0.1:11434/v1/',
      JARVIS_DEFAULT_MODEL: 'llama3.2',
      JARVIS_UPSTREAM_API_KEY: 'sk-upstream',
    });
    expect(config.defaultModel).toBe('llama3.2');
    expect(config.upstreams).toEqual([{ name: 'default', baseUrl: 'http://127.0.0.1:11434/v1', models: ['*'], apiKey: 'sk-upstream' }]);
  });

  it('makes that upstream an Anthropic one with JARVIS_UPSTREAM_PROVIDER=anthropic', () => {
    const config = loadConfig({ JARVIS_UPSTREAM_BASE_URL: 'https://api.anthropic.com', JARVIS_UPSTREAM_PROVIDER: 'anthropic', JARVIS_DEFAULT_MODEL: 'claude-sonnet-4-5' });
    expect(config.upstreams).toEqual([{ name: 'default', baseUrl: 'https://api.anthropic.com', models: ['*'], provider: 'anthropic' }]);
  });

  it.each([
    [{ PORT: 'abc' }, /PORT/],
    [{ PORT: ' ' }, /PORT/],
    [{ PORT: '70000' }, /port/],
    [{ PORT: '80.5' }, /port/],
    [{ JARVIS_SESSION_POLICY: 'bogus' }, /sessions\.policy/],
    [{ JARVIS_LOG_LEVEL: 'loud' }, /log\.level/],
    [{ JARVIS_API_KEYS: 'short' }, /apiKeys/],
    [{ JARVIS_SIM_TOKENS_PER_SEC: '0' }, /simulator\.tokensPerSec/],
    [{ JARVIS_UPSTREAM_BASE_URL: 'http://127.0.0.1:11434/v1' }, /JARVIS_DEFAULT_MODEL/],
    [{ JARVIS_UPSTREAM_BASE_URL: 'ftp://example.com', JARVIS_DEFAULT_MODEL: 'm' }, /baseUrl/],
    [{ JARVIS_CONFIG: '/nonexistent/jarvis.yaml' }, /JARVIS_CONFIG/],
    [{ JARVIS_UPSTREAM_BASE_URL: 'https://api.anthropic.com', JARVIS_DEFAULT_MODEL: 'm', JARVIS_UPSTREAM_PROVIDER: 'claude' }, /JARVIS_UPSTREAM_PROVIDER: expected one of openai, anthropic/],
    [{ JARVIS_UPSTREAM_PROVIDER: 'anthropic' }, /JARVIS_UPSTREAM_PROVIDER needs JARVIS_UPSTREAM_BASE_URL/],
  ])('rejects %j with a one-line ConfigError', (env, mentions) => {
    const err = configError(env);
    expect(err.name).toBe('ConfigError');
    expect(err.message).toMatch(mentions);
    expect(err.message).not.toContain('\n');
  });

  it('rejects a config file that is not valid YAML, or not an object, in one line', () => {
    for (const text of ['upstreams: [unclosed\n  - {', '- just\n- a list\n']) {
      const err = configError({ JARVIS_CONFIG: file('broken.yaml', text) });
      expect(err.message).toMatch(/JARVIS_CONFIG/);
      expect(err.message).not.toContain('\n');
    }
  });

  it('rejects unknown keys and duplicate upstream names in a config file', () => {
    expect(configError({ JARVIS_CONFIG: file('typo.json', '{"prot": 9000}') }).message).not.toContain('\n');
    const twice = JSON.stringify({ upstreams: [{ name: 'a', baseUrl: 'http://x', models: ['m1'] }, { name: 'a', baseUrl: 'http://y', models: ['m2'] }] });
    expect(configError({ JARVIS_CONFIG: file('twice.json', twice) }).message).toMatch(/duplicate upstream name "a"/);
  });

  it('routes two models to two upstreams from a YAML file, with the environment taking precedence', () => {
    const path = file(
      'jarvis.yaml',
      [
        'port: 9100',
        'defaultModel: small',
        'upstreams:',
        '  - name: local',
        '    baseUrl: http://127.0.0.1:11434/v1',
        '    models: [small]',
        '  - name: cloud',
        '    baseUrl: https://api.example.com/v1',
        '    apiKey: sk-cloud',
        '    models: [large]',
        'sessions:',
        '  policy: reject',
      ].join('\n'),
    );
    const config = loadConfig({ JARVIS_CONFIG: path, PORT: '9200' });
    expect(config.port).toBe(9200);
    expect(config.defaultModel).toBe('small');
    expect(config.upstreams).toEqual([
      { name: 'local', baseUrl: 'http://127.0.0.1:11434/v1', models: ['small'] },
      { name: 'cloud', baseUrl: 'https://api.example.com/v1', apiKey: 'sk-cloud', models: ['large'] },
    ]);
    // Nested sections merge with the defaults rather than replacing them.
    expect(config.sessions).toEqual({ ...defaultConfig().sessions, policy: 'reject' });
  });
});

describe('strict at every level', () => {
  it.each([
    [{ access: { Keys: [{ name: 'alice', key: 'sk-alice-0001' }] } }, /^access\.Keys: unknown setting; did you mean `keys`\?$/],
    [{ access: { rmp: 10 } }, /^access\.rmp: unknown setting; did you mean `rpm`\?$/],
    [{ sessions: { polcy: 'reject' } }, /^sessions\.polcy: unknown setting; did you mean `policy`\?$/],
    [{ events: { flush_ms: 50 } }, /^events\.flush_ms: unknown setting; did you mean `flushMs`\?$/],
    [{ log: { levle: 'debug' } }, /^log\.levle: unknown setting; did you mean `level`\?$/],
    [{ simulator: { tokens: 5 } }, /^simulator\.tokens: unknown setting; known here: tokensPerSec, ttftMs$/],
    [{ redis: { URL: 'redis://127.0.0.1:6379' } }, /^redis\.URL: unknown setting; did you mean `url`\?$/],
    [{ access: { keys: [{ name: 'alice', key: 'sk-alice-0001', rmp: 5 }] } }, /^access\.keys\.0\.rmp: unknown setting; did you mean `rpm`\?$/],
    [{ upstreams: [{ name: 'a', baseUrl: 'http://127.0.0.1:1/v1', models: ['m'], api_key: 'sk-x' }] }, /^upstreams\.0\.api_key: unknown setting; did you mean `apiKey`\?$/],
    [{ prot: 9000 }, /^prot: unknown setting; did you mean `port`\?$/],
  ])('refuses %j, naming the path and the key that was meant', (config, message) => {
    expect(configError({ JARVIS_CONFIG: file(`strict-${Math.random().toString(36).slice(2)}.json`, JSON.stringify(config)) }).message).toMatch(message);
  });
});

describe('config errors never echo a secret', () => {
  const SECRET = 'sk-SECRET-4f9a2c';
  it.each([
    ['upstreams written as a map', { JARVIS_CONFIG: { upstreams: { primary: { baseUrl: 'http://127.0.0.1:1/v1', apiKey: SECRET } } } }, /^upstreams: Expected array \(got an object\)$/],
    ['a numeric apiKey', { JARVIS_CONFIG: { upstreams: [{ name: 'a', baseUrl: 'http://127.0.0.1:1/v1', models: ['m'], apiKey: 4_242_424_242 }] } }, /^upstreams\.0\.apiKey: Expected string$/],
    ['apiKeys as a string', { JARVIS_CONFIG: { apiKeys: SECRET } }, /^apiKeys: Expected array$/],
    ['access.keys as a map', { JARVIS_CONFIG: { access: { keys: { alice: SECRET } } } }, /^access\.keys: Expected array$/],
    ['a key too short', { JARVIS_CONFIG: { access: { keys: [{ name: 'alice', key: 'sk-SEC' }] } } }, /^access\.keys\.0\.key: /],
    ['a sha256 that is not one', { JARVIS_CONFIG: { access: { keys: [{ name: 'alice', sha256: SECRET }] } } }, /^access\.keys\.0\.sha256: /],
    ['a REDIS_URL typo', { REDIS_URL: `redis//:${SECRET}@127.0.0.1:6379` }, /^redis\.url: /],
    ['a REDIS_URL with a port out of range', { REDIS_URL: `redis://:${SECRET}@127.0.0.1:99999` }, /^redis\.url: not a URL/],
    ['a redis.url in a file', { JARVIS_CONFIG: { redis: { url: `http://:${SECRET}@127.0.0.1:6379` } } }, /^redis\.url: /],
    ['a baseUrl with credentials', { JARVIS_UPSTREAM_BASE_URL: `ftp://user:${SECRET}@127.0.0.1/v1`, JARVIS_DEFAULT_MODEL: 'm' }, /^upstreams\.0\.baseUrl: /],
    ['a JARVIS_API_KEYS key too short', { JARVIS_API_KEYS: 'alice=sk-SEC' }, /JARVIS_API_KEYS entry 1/],
    ['a config file that is not JSON', { JARVIS_CONFIG: `{"upstreams": [{"apiKey": "${SECRET}" oops}]}` }, /^cannot parse JARVIS_CONFIG file .*: not valid JSON/],
  ])('%s', (_, given, message) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(given)) env[k] = k === 'JARVIS_CONFIG' ? file(`secret-${Math.random().toString(36).slice(2)}.json`, typeof v === 'string' ? v : JSON.stringify(v)) : String(v);
    const err = configError(env);
    expect(err.message).toMatch(message);
    for (const secret of [SECRET, 'sk-SEC', '4242424242']) expect(err.message).not.toContain(secret);
  });
});

describe('upstream providers', () => {
  it.each([
    [{ provider: 'bard' }, /upstreams\.0\.provider/],
    [{ provider: 'gemini', responses: 'native' }, /native is for OpenAI upstreams/],
    [{ provider: 'anthropic', responses: 'native' }, /native is for OpenAI upstreams/],
    [{ anthropicVersion: '2023-06-01' }, /for provider: anthropic/],
    [{ provider: 'anthropic', anthropicVersion: 'latest' }, /anthropicVersion/],
    [{ provider: 'anthropic', maxTokens: 0 }, /maxTokens/],
  ])('refuses an upstream %j in one line', (extra, mentions) => {
    expect(() => makeConfig({ upstreams: [{ name: 'u', baseUrl: 'https://api.anthropic.com', ...extra } as never] })).toThrow(mentions);
  });

  it('takes an Anthropic upstream with its version, default max_tokens and dropParams', () => {
    const config = makeConfig({ upstreams: [{ name: 'claude', baseUrl: 'https://api.anthropic.com', provider: 'anthropic', anthropicVersion: '2023-06-01', maxTokens: 1024, dropParams: true }] });
    expect(config.upstreams[0]).toMatchObject({ provider: 'anthropic', anthropicVersion: '2023-06-01', maxTokens: 1024, dropParams: true });
  });
});

describe('routes', () => {
  const upstreams = [
    { name: 'a', baseUrl: 'http://127.0.0.1:1/v1' },
    { name: 'b', baseUrl: 'http://127.0.0.1:2/v1', circuit: { failures: 3, cooldownMs: 1000 } },
  ];
  const load = (routes: unknown) => loadConfig({ JARVIS_CONFIG: file(`routes-${Math.random().toString(36).slice(2)}.json`, JSON.stringify({ upstreams, routes })) });

  it('takes routes whose targets name upstreams (an upstream may serve routes only)', () => {
    const config = load([{ model: 'assistant', targets: [{ upstream: 'a', model: 'x', weight: 3 }, { upstream: 'b', model: 'y', priority: 1 }], retries: 1, firstTokenTimeoutMs: 2500, hedgeAfterMs: 400 }]);
    expect(config.routes[0]).toMatchObject({ model: 'assistant', retries: 1, hedgeAfterMs: 400 });
  });

  it.each([
    [[{ model: 'r', targets: [{ upstream: 'nope', model: 'x' }] }], /^routes\.0\.targets\.0\.upstream: no upstream is named "nope"$/],
    [[{ model: 'r', targets: [{ upstream: 'a', model: 'x' }] }, { model: 'r', targets: [{ upstream: 'b', model: 'y' }] }], /^routes\.1\.model: "r" has two routes$/],
    [[{ model: 'r', targets: [{ upstream: 'a', model: 'x', wieght: 2 }] }], /^routes\.0\.targets\.0\.wieght: unknown setting; did you mean `weight`\?$/],
    [[{ model: 'r', targets: [] }], /^routes\.0\.targets: /],
    [[{ model: 'r', targets: [{ upstream: 'a', model: 'x' }], hedgeAfter: 10 }], /^routes\.0\.hedgeAfter: unknown setting; did you mean `hedgeAfterMs`\?$/],
  ])('refuses %j in one line', (routes, message) => {
    let err: Error | undefined;
    try {
      load(routes);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(message);
  });
});
