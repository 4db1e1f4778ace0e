// The jarvis process refuses to serve an address others can reach without API keys: one line, exit code 2.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

/** Runs `src/main.ts` with only `env` set of Jarvis's settings; resolves once it has exited. */
function run(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JARVIS_') && k !== 'PORT' && k !== 'HOST' && k !== 'REDIS_URL'));
  const child = spawn(process.execPath, [tsxCli, 'src/main.ts'], { cwd: root, env: { ...base, JARVIS_LEDGER: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('the jarvis process', () => {
  it('exits 2 with one line when told to listen on 0.0.0.0 without keys', async () => {
    const { code, stdout, stderr } = await run({ HOST: '0.0.0.0', PORT: '0' });
    expect(code).toBe(2);
    const lines = stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^jarvis: invalid configuration: refusing to serve 0\.0\.0\.0 without API keys: .*JARVIS_API_KEYS or JARVIS_KEYS_FILE, or JARVIS_ALLOW_INSECURE=1/);
    expect(stdout).toBe('');
  });

  it('exits 2 without echoing a key that is too short', async () => {
    const { code, stderr } = await run({ JARVIS_API_KEYS: 'alice=tiny' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^jarvis: invalid configuration: .*at least 8 characters/);
    expect(stderr).not.toContain('tiny');
  });
});
