// Keeps `npm run soak` from rotting: the real script, as a child process, for a few seconds of mixed traffic. It
// must re-run itself with --expose-gc, take a baseline, drain, and pass its own checks.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

it('runs five seconds of mixed traffic and passes: nothing hung, heap and handles back to baseline', async () => {
  const child = spawn(process.execPath, [tsxCli, 'scripts/soak.ts', '--duration-s', '5', '--rate', '15'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));

  expect(out).toMatch(/gc exposed/);
  expect(out).toMatch(/soak: baseline after \d+ warm-up requests/);
  const summary = /soak: (\d+) requests \((.*)\), (\d+) as expected, (\d+) hung/.exec(out);
  expect(summary, out).not.toBeNull();
  const [, total, kinds, expected, hung] = summary!;
  expect(Number(hung)).toBe(0);
  expect(Number(expected)).toBe(Number(total));
  for (const kind of ['stream', 'json', 'barge-in', 'abort', 'failing-upstream', 'subscriber', 'bad-request']) expect(kinds).toMatch(new RegExp(`\\b${kind}=\\d+`));
  expect(out).toMatch(/soak: PASS/);
  expect(code, out).toBe(0);
}, 120_000);
