import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from './bind.js';
import { parseEnvKey, resolveKeys, sha256Hex, type KeyEntry } from './keys.js';

const sources = (apiKeys: string[], keys: KeyEntry[] = [], rpm = 0, maxStreams = 0) => ({ apiKeys, access: { keys, rpm, maxStreams } });
const errorOf = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not throw');
};

describe('parseEnvKey', () => {
  it('splits name=key at the first "=", and takes a bare entry as an unnamed key', () => {
    expect(parseEnvKey('alice=sk-alice-123')).toEqual({ name: 'alice', key: 'sk-alice-123' });
    expect(parseEnvKey('bob=sk=with=equals')).toEqual({ name: 'bob', key: 'sk=with=equals' });
    expect(parseEnvKey('sk-plain-12345')).toEqual({ name: null, key: 'sk-plain-12345' });
  });
});

describe('resolveKeys', () => {
  it('gives environment keys every scope and the default quotas; a name is the identity, else a digest prefix', () => {
    const [named, unnamed] = resolveKeys(sources(['alice=sk-alice-123', 'sk-plain-12345'], [], 60, 2));
    expect(named!.digest).toBe(sha256Hex('sk-alice-123'));
    expect(named!.identity).toMatchObject({ id: 'alice', models: null, rpm: 60, maxStreams: 2 });
    expect([...named!.identity.scopes]).toEqual(['chat', 'events', 'admin']);
    expect(unnamed!.identity.id).toBe(`key_${sha256Hex('sk-plain-12345').slice(0, 12)}`);
  });

  it('takes file entries by key or by digest, with their scopes, models and quotas, or chat+events and the defaults', () => {
    const digest = sha256Hex('sk-hashed-key-1');
    const [plain, hashed] = resolveKeys(
      sources([], [
        { name: 'ui', key: 'sk-ui-key-123', scopes: ['events'], models: ['m1'], rpm: 5, maxStreams: 0 },
        { name: 'bot', sha256: digest.toUpperCase() },
      ], 30, 4),
    );
    expect(plain!.identity).toMatchObject({ id: 'ui', rpm: 5, maxStreams: 0 });
    expect([...plain!.identity.scopes]).toEqual(['events']);
    expect([...plain!.identity.models!]).toEqual(['m1']);
    expect(hashed!.digest).toBe(digest);
    expect(hashed!.identity).toMatchObject({ id: 'bot', models: null, rpm: 30, maxStreams: 4 });
    expect([...hashed!.identity.scopes]).toEqual(['chat', 'events']);
  });

  it('lets one name hold several keys (rotation): both are the same tenant', () => {
    const keys = resolveKeys(sources(['alice=sk-old-key-1', 'alice=sk-new-key-2']));
    expect(keys.map((k) => k.identity.id)).toEqual(['alice', 'alice']);
  });

  it.each([
    ['a key listed twice', sources(['sk-same-key-1', 'bob=sk-same-key-1']), /already configured/],
    ['a short key after its name', sources(['alice=short']), /at least 8/],
    ['a bad name', sources(['al/ice=sk-alice-123']), /key name/],
    ['a reserved name', sources(['key_abc=sk-alice-123']), /reserved/],
    ['key and sha256 both', sources([], [{ name: 'x', key: 'sk-both-key-1', sha256: sha256Hex('y') }]), /exactly one/],
    ['neither key nor sha256', sources([], [{ name: 'x' }]), /exactly one/],
    ['the same key in the file and the environment', sources(['sk-twice-key-1'], [{ name: 'x', key: 'sk-twice-key-1' }]), /already configured/],
  ])('refuses %s in one line that names the entry, never the key', (_what, src, message) => {
    const err = errorOf(() => resolveKeys(src));
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
    for (const secret of ['sk-same-key-1', 'short', 'sk-alice-123', 'sk-both-key-1', 'sk-twice-key-1']) expect(err.message).not.toContain(secret);
  });
});

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])('%s is loopback', (h) => {
    expect(isLoopbackHost(h)).toBe(true);
  });
  it.each(['0.0.0.0', '::', '10.0.0.5', '192.168.1.10', 'example.com', 'localhost.example.com', '::ffff:10.0.0.1'])('%s is not', (h) => {
    expect(isLoopbackHost(h)).toBe(false);
  });
});
