// JARVIS_TLS_CERT_FILE and JARVIS_TLS_KEY_FILE: HTTPS and WSS on Jarvis's port, and a start that stops with one
// line naming the setting (never the file's contents) when a file is missing, unreadable, not PEM, or mismatched.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { makeCertificate, type TestCertificate } from './support/tls.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

let cert: TestCertificate;
let other: TestCertificate;
beforeAll(async () => {
  [cert, other] = await Promise.all([makeCertificate(), makeCertificate()]);
});
afterAll(async () => {
  await Promise.all([cert.remove(), other.remove()]);
});

describe('with a certificate', () => {
  let jarvis: TestJarvis;
  beforeAll(async () => {
    jarvis = await startJarvis({ tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
  });
  afterAll(() => jarvis.close());

  it('serves HTTPS on its port, trusted through the certificate', async () => {
    expect(jarvis.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const dispatcher = new Agent({ connect: { ca: cert.cert } });
    const res = await undiciFetch(`${jarvis.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
      dispatcher,
    });
    expect(res.status).toBe(200);
    await dispatcher.close();
  });

  it('refuses a client that does not trust it, and serves WSS', async () => {
    await expect(fetch(`${jarvis.url}/healthz`)).rejects.toThrow();
    const ws = new WebSocket(`${jarvis.url.replace('https', 'wss')}/v1/responses`, { ca: cert.cert });
    const message = new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'response.create', input: 'hi', max_output_tokens: 3 }));
    expect(JSON.parse(await message)).toMatchObject({ type: 'response.created' });
    ws.close();
  });
});

/** Runs `src/main.ts` with `env` as its only Jarvis settings; resolves once it has exited. */
function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JARVIS_') && k !== 'PORT' && k !== 'HOST' && k !== 'REDIS_URL'));
  const child = spawn(process.execPath, [tsxCli, 'src/main.ts'], { cwd: root, env: { ...base, PORT: '0', JARVIS_LOG_FILE: '', JARVIS_LEDGER: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stderr })));
}

describe('a bad certificate setting stops the start with one line that names it', () => {
  it.each([
    ['only one of the two', () => ({ JARVIS_TLS_CERT_FILE: cert.certFile }), /JARVIS_TLS_CERT_FILE and JARVIS_TLS_KEY_FILE go together/],
    ['an unreadable certificate', () => ({ JARVIS_TLS_CERT_FILE: `${cert.certFile}.missing`, JARVIS_TLS_KEY_FILE: cert.keyFile }), /JARVIS_TLS_CERT_FILE: cannot read .*\(ENOENT\)/],
    ['a key that is not PEM', () => ({ JARVIS_TLS_CERT_FILE: cert.certFile, JARVIS_TLS_KEY_FILE: cert.certFile }), /JARVIS_TLS_KEY_FILE: .* is not a PEM private key/],
    ['a key of another certificate', () => ({ JARVIS_TLS_CERT_FILE: cert.certFile, JARVIS_TLS_KEY_FILE: other.keyFile }), /JARVIS_TLS_KEY_FILE: .* is not the private key of JARVIS_TLS_CERT_FILE's certificate/],
  ])('%s', async (_, env, message) => {
    const { code, stderr } = await run(env());
    expect(code).toBe(2);
    const lines = stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^jarvis: invalid configuration: /);
    expect(lines[0]).toMatch(message);
    expect(stderr).not.toContain('BEGIN');
  });

  it('a certificate file that holds something else', async () => {
    const junk = `${cert.certFile}.junk`;
    await writeFile(junk, 'secret-looking contents that must never be echoed\n');
    const { code, stderr } = await run({ JARVIS_TLS_CERT_FILE: junk, JARVIS_TLS_KEY_FILE: cert.keyFile });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^jarvis: invalid configuration: JARVIS_TLS_CERT_FILE: .* is not a PEM certificate/);
    expect(stderr).not.toContain('secret-looking');
  });
});
