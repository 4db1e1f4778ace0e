// npm run chat -- [--url URL] [--key KEY] [--model NAME] [--session ID]
// A terminal chat against a running Jarvis (the local simulator by default). The answer streams as it comes; a
// line typed while it streams is a barge-in: the old answer stops where it was, marked interrupted, and the new one
// starts. /policy, /model, /new, /quit; Ctrl-C stops an answer, or at the prompt exits. Piped input is answered
// one line at a time, without colour, and the chat exits at its end.
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const POLICIES = ['cancel-previous', 'queue', 'reject', 'parallel'] as const;

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.JARVIS_URL ?? 'http://127.0.0.1:8000' },
    key: { type: 'string', default: process.env.JARVIS_KEY },
    model: { type: 'string', default: 'jarvis-sim' },
    session: { type: 'string' },
  },
});

const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
const paint = (code: string) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const dim = paint('2');
const yellow = paint('33');
const red = paint('31');

const state = {
  url: values.url!.replace(/\/+$/, ''),
  key: values.key,
  model: values.model!,
  session: values.session ?? `chat-${randomBytes(4).toString('hex')}`,
  policy: 'cancel-previous' as (typeof POLICIES)[number],
};

interface Answer {
  controller: AbortController;
  done: Promise<void>;
  /** Text written for this answer so far. */
  text: string;
}

let current: Answer | undefined;
let history: { role: 'user' | 'assistant'; content: string }[] = [];

function write(text: string): void {
  process.stdout.write(text);
}

/** One answer, streamed to the terminal; resolves when it ends however it ends. */
function ask(prompt: string): Answer {
  const controller = new AbortController();
  const answer: Answer = { controller, text: '', done: Promise.resolve() };
  const messages = [...history, { role: 'user' as const, content: prompt }];
  answer.done = (async () => {
    const started = performance.now();
    let firstAt: number | undefined;
    let tokens = 0;
    let finish = '';
    try {
      const res = await fetch(`${state.url}/v1/chat/completions`, {
        method: 'POST',
        signal: controller.signal,
        headers: {
          'content-type': 'application/json',
          'x-session-id': state.session,
          'x-session-policy': state.policy,
          ...(state.key ? { authorization: `Bearer ${state.key}` } : {}),
        },
        body: JSON.stringify({ model: state.model, stream: true, messages }),
      });
      if (res.status !== 200) {
        const body = (await res.json().catch(() => ({}))) as { error?: { message?: string; code?: string } };
        write(red(`\n[${res.status} ${body.error?.code ?? ''}: ${body.error?.message ?? res.statusText}]\n`));
        return;
      }
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const event = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = event.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
          if (!data || data === '[DONE]') continue;
          const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string }; finish_reason?: string | null }[]; error?: { message?: string } };
          if (parsed.error) {
            write(red(`\n[error: ${parsed.error.message ?? 'upstream error'}]`));
            finish = 'error';
            continue;
          }
          const choice = parsed.choices?.[0];
          const text = choice?.delta?.content ?? '';
          if (text) {
            firstAt ??= performance.now();
            tokens++;
            answer.text += text;
            write(text);
          }
          if (choice?.finish_reason) finish = choice.finish_reason;
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) write(red(`\n[${(err as Error).message}]`));
      finish = controller.signal.aborted ? 'stopped' : 'error';
    }
    const seconds = firstAt === undefined ? 0 : (performance.now() - firstAt) / 1000;
    if (finish === 'cancelled') write(yellow(` [interrupted: ${answer.text.length} chars delivered]`));
    if (finish === 'stopped') write(yellow(` [stopped: ${answer.text.length} chars delivered]`));
    const ttft = firstAt === undefined ? '–' : `${Math.round(firstAt - started)} ms`;
    const rate = seconds > 0 ? `${(tokens / seconds).toFixed(1)} tok/s` : '–';
    write(`\n${dim(`ttft ${ttft} · ${rate} · ${finish || 'no answer'}`)}\n`);
    // The conversation keeps what the person got: an interrupted answer as far as it was delivered.
    history = [...messages, ...(answer.text ? [{ role: 'assistant' as const, content: answer.text }] : [])];
  })();
  return answer;
}

function command(line: string): boolean {
  const [name, arg] = line.slice(1).split(/\s+/, 2);
  switch (name) {
    case 'quit':
    case 'exit':
      process.exit(0);
      break;
    case 'new':
      state.session = `chat-${randomBytes(4).toString('hex')}`;
      history = [];
      write(dim(`new session ${state.session}\n`));
      return true;
    case 'model':
      if (arg) state.model = arg;
      write(dim(`model ${state.model}\n`));
      return true;
    case 'policy':
      if (arg && (POLICIES as readonly string[]).includes(arg)) state.policy = arg as (typeof POLICIES)[number];
      else if (arg) write(red(`policy must be one of ${POLICIES.join(', ')}\n`));
      write(dim(`policy ${state.policy}\n`));
      return true;
    default:
      write(red(`unknown command /${name}: /policy, /model, /new, /quit\n`));
      return true;
  }
  return true;
}

async function piped(): Promise<void> {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const text = line.trim();
    if (!text) continue;
    if (text.startsWith('/')) {
      command(text);
      continue;
    }
    await ask(text).done;
  }
}

function interactive(): void {
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
  write(dim(`Jarvis at ${state.url} · model ${state.model} · session ${state.session} · /policy /model /new /quit\n`));
  rl.prompt();
  rl.on('line', (line) => {
    const text = line.trim();
    if (!text) return rl.prompt();
    if (text.startsWith('/')) {
      command(text);
      return rl.prompt();
    }
    // A line typed while an answer streams is a barge-in: the server ends the old answer (cancelled), and it
    // is marked where it stopped.
    const answer = ask(text);
    current = answer;
    void answer.done.then(() => {
      if (current === answer) {
        current = undefined;
        rl.prompt();
      }
    });
  });
  rl.on('SIGINT', () => {
    if (current) {
      current.controller.abort();
      return;
    }
    write('\n');
    process.exit(0);
  });
  rl.on('close', () => process.exit(0));
}

if (tty) interactive();
else void piped().then(() => process.exit(0));
