import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig, loadConfig } from './config.js';
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
