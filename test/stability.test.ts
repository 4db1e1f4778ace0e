import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startJarvis, type TestJarvis } from './support/jarvis.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the tool as the operator would, as its own process: it must stand alone and exit by itself. */
function runTool(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/stability.ts', ...args], { cwd: root, timeout: 25_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nothing listens on: bound by us, then released, so the connection is refused rather than guessed free. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

let jarvis: TestJarvis;
beforeAll(async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 400, ttftMs: 20 } });
});
afterAll(() => jarvis?.close());

it('passes every check against a healthy Jarvis and exits 0', async () => {
  const run = await runTool(['--url', jarvis.url, '--quick']);
  expect(run.stdout, run.stderr).toContain('ALL TESTS PASSED');
  expect(run.code, run.stdout + run.stderr).toBe(0);
  for (const check of ['rapid requests', 'concurrency', 'client aborts', 'health']) {
    expect(run.stdout).toMatch(new RegExp(`^✓ ${check}:`, 'm'));
  }
  expect(run.stdout).not.toContain('✗');
  // Confirms from the server's side that the tool really barged in and really aborted, not just that it printed ✓.
  await jarvis.waitForLog((log) => log.includes('reason=superseded') && log.includes('reason=client_disconnected'));
});

it('reports an unreachable server in one line and exits 1', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const run = await runTool(['--url', url, '--timeout-ms', '2000']);
  expect(run.code, run.stdout + run.stderr).toBe(1);
  expect(run.stdout).toMatch(new RegExp(`^✗ cannot reach Jarvis at ${url.replaceAll('.', '\\.')}: .*ECONNREFUSED`, 'm'));
  expect(run.stdout).not.toContain('ALL TESTS PASSED');
  expect(run.stderr).toBe('');
});
