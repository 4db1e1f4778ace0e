// npm run chat, as a person uses it: in tmux (send-keys to type, capture-pane to read), a line typed while an
// answer streams interrupts it and the next answer appears; and piped, it answers each line and exits.
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJarvis, throughMock, type TestJarvis } from './support/jarvis.js';
import { startMockUpstream } from '../fakes/openai/index.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

let jarvis: TestJarvis;
beforeAll(async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 60, ttftMs: 0 } });
});
afterAll(async () => {
  await jarvis.close();
});

describe('npm run chat, piped', () => {
  it('answers each line, with a status line, without colour, and exits', async () => {
    const child = spawn(process.execPath, [tsxCli, 'scripts/chat.ts', '--url', jarvis.url], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.end('2+2?\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(out).toMatch(/4/);
    expect(out).toMatch(/ttft \d+ ms · [\d.]+ tok\/s · stop/);
    expect(out).not.toContain('\x1b[');
  }, 30_000);
});

describe('npm run chat against an upstream', () => {
  it('asks for the model it is told, and prints the upstream\'s answer', async () => {
    const mock = await startMockUpstream({ defaults: { tokens: 4, text: 'up' } });
    const j = await startJarvis(throughMock(mock.url));
    try {
      const child = spawn(process.execPath, [tsxCli, 'scripts/chat.ts', '--url', j.url, '--model', 'mock-model'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stdin.end('hello upstream\n');
      expect(await new Promise<number | null>((resolve) => child.once('close', resolve))).toBe(0);
      expect(mock.requests.at(-1)!.body.model).toBe('mock-model');
      expect(out).toMatch(/up/);
      expect(out).toMatch(/· stop/);
    } finally {
      await j.close();
      await mock.close();
    }
  }, 30_000);
});

describe('npm run chat, in a terminal (tmux)', () => {
  const session = `jarvis-chat-${process.pid}`;
  const tmux = (...args: string[]) => run('tmux', args);
  const pane = async () => (await tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200')).stdout;
  /** Reads the pane until `ok` holds: the terminal is the only place the answer is. */
  const until = async (ok: (text: string) => boolean, what: string, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await pane();
      if (ok(text)) return text;
      if (Date.now() > deadline) throw new Error(`the terminal never showed ${what}:\n${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  afterAll(async () => {
    await tmux('kill-session', '-t', session).catch(() => {});
  });

  it('streams the answer; a line typed mid-answer interrupts it, marked, and the next answer appears', async () => {
    const command = `${process.execPath} ${tsxCli} scripts/chat.ts --url ${jarvis.url}`;
    await tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', '-c', root, command);
    await until((t) => /^> /m.test(t), 'the prompt');
    await tmux('send-keys', '-t', session, 'Write a long essay about rivers', 'Enter');
    // Some of the answer, and no status line yet: it is still streaming.
    await until((t) => (t.split('Write a long essay about rivers')[1]?.trim().length ?? 0) > 40 && !/ttft/.test(t), 'the answer streaming');
    await tmux('send-keys', '-t', session, '2+2?', 'Enter');
    const text = await until((t) => /\[interrupted: \d+ chars delivered\]/.test(t) && /· stop/.test(t), 'the interruption and the next answer');
    expect(text).toMatch(/ttft \d+ ms · [\d.]+ tok\/s · cancelled/);
    expect(text.indexOf('[interrupted')).toBeLessThan(text.lastIndexOf('· stop'));
    // The log proves the barge-in: the first stream cancelled as superseded.
    expect(await jarvis.logs()).toMatch(/stream_cancelled .*reason=superseded/);
    // Ctrl-C during an answer stops it (the client aborts); at the prompt it exits.
    await tmux('send-keys', '-t', session, 'Write a long essay about lakes', 'Enter');
    await until((t) => (t.split('Write a long essay about lakes')[1]?.trim().length ?? 0) > 40, 'the second long answer streaming');
    await tmux('send-keys', '-t', session, 'C-c');
    await until((t) => /\[stopped: \d+ chars delivered\]/.test(t) && /· stopped/.test(t), 'the answer stopped');
    await jarvis.waitForLog((l) => /stream_cancelled .*reason=client_disconnected/.test(l));
    await until((t) => /^>\s*$/.test(t.trimEnd().split('\n').at(-1) ?? ''), 'the prompt again');
    await tmux('send-keys', '-t', session, 'C-c');
    const deadline = Date.now() + 10_000;
    while (await tmux('has-session', '-t', session).then(() => true, () => false)) {
      if (Date.now() > deadline) throw new Error('the chat did not exit on Ctrl-C at the prompt');
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 40_000);
});
