// The access settings as loadConfig reads them: keys file (JSON, YAML), quotas, CORS, and the insecure-bind refusal.
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { sha256Hex } from './keys.js';
import { configError, configFiles } from '../../test/support/config.js';

const files = configFiles('jarvis-access-');
afterAll(() => files.remove());
const file = files.file;

describe('a keys file', () => {
  const digest = sha256Hex('sk-bot-secret-1');

  it('in YAML: named keys by value or digest, with scopes, models and quotas', () => {
    const path = file(
      'keys.yaml',
      `- name: ui
  key: sk-ui-secret-1
  scopes: [chat, events]
  models: [jarvis-sim]
  rpm: 60
  maxStreams: 2
- name: ops
  sha256: ${digest}
  scopes: [admin]
`,
    );
    const config = loadConfig({ JARVIS_KEYS_FILE: path, JARVIS_KEY_RPM: '100', JARVIS_KEY_MAX_STREAMS: '5' });
    expect(config.access).toMatchObject({ rpm: 100, maxStreams: 5 });
    expect(config.access.keys).toEqual([
      { name: 'ui', key: 'sk-ui-secret-1', scopes: ['chat', 'events'], models: ['jarvis-sim'], rpm: 60, maxStreams: 2 },
      { name: 'ops', sha256: digest, scopes: ['admin'] },
    ]);
  });

  it('in JSON, as a list or as {"keys": [...]}', () => {
    const list = [{ name: 'bot', sha256: digest }];
    expect(loadConfig({ JARVIS_KEYS_FILE: file('keys.json', JSON.stringify(list)) }).access.keys).toEqual(list);
    expect(loadConfig({ JARVIS_KEYS_FILE: file('wrapped.json', JSON.stringify({ keys: list })) }).access.keys).toEqual(list);
  });

  it.each([
    ['an unknown scope', '[{"name":"a","key":"sk-a-secret-1","scopes":["root"]}]', /access\.keys\.0\.scopes/],
    ['an unknown field', '[{"name":"a","key":"sk-a-secret-1","admin":true}]', /access\.keys\.0/],
    ['a short key', '[{"name":"a","key":"sk-a"}]', /access\.keys\.0\.key/],
    ['key and sha256 both', `[{"name":"a","key":"sk-a-secret-1","sha256":"${digest}"}]`, /exactly one/],
    ['no list', '{"name":"a"}', /expected a list/],
    ['broken JSON', '[{"name":"a","key":"sk-a-secret-1"', /cannot parse JARVIS_KEYS_FILE/],
  ])('with %s is a one-line ConfigError that never quotes a key', (_what, text, message) => {
    const err = configError({ JARVIS_KEYS_FILE: file('bad.json', text) });
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
    expect(err.message).not.toContain('sk-a');
  });

  it('that cannot be read is a one-line ConfigError', () => {
    expect(configError({ JARVIS_KEYS_FILE: files.path('missing.yaml') }).message).toMatch(/cannot read JARVIS_KEYS_FILE/);
  });

  it('a short environment key is refused without being echoed', () => {
    for (const keys of ['short', 'alice=short']) {
      const err = configError({ JARVIS_API_KEYS: keys });
      expect(err.message).toMatch(/apiKeys|at least 8/);
      expect(err.message).not.toContain('short');
    }
  });
});

describe('listening beyond loopback', () => {
  it('is refused without keys, in one line naming the way out', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'jarvis.internal']) {
      const err = configError({ HOST: host });
      expect(err.message).toMatch(/refusing to serve .* without API keys.*JARVIS_API_KEYS.*JARVIS_ALLOW_INSECURE=1/);
      expect(err.message).not.toContain('\n');
    }
  });

  it('is allowed with keys (from either source), or with JARVIS_ALLOW_INSECURE=1', () => {
    expect(loadConfig({ HOST: '0.0.0.0', JARVIS_API_KEYS: 'sk-some-key-1' }).host).toBe('0.0.0.0');
    const keysFile = file('one.json', '[{"name":"a","key":"sk-a-secret-1"}]');
    expect(loadConfig({ HOST: '0.0.0.0', JARVIS_KEYS_FILE: keysFile }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0', JARVIS_ALLOW_INSECURE: '1' }).access.allowInsecure).toBe(true);
  });

  it('loopback needs nothing', () => {
    expect(loadConfig({ HOST: '127.0.0.1' }).access.keys).toEqual([]);
    expect(loadConfig({ HOST: 'localhost' }).host).toBe('localhost');
  });
});

describe('JARVIS_CORS_ORIGINS', () => {
  it('takes a comma list of exact origins', () => {
    expect(loadConfig({ JARVIS_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' }).access.corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
  });

  it.each(['*', 'https://app.example.com/', 'app.example.com', 'https://*.example.com'])('refuses %j', (origin) => {
    expect(configError({ JARVIS_CORS_ORIGINS: origin }).message).toMatch(/access\.corsOrigins/);
  });
});
