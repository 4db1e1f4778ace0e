import { SIMULATED_MODEL } from '../../config.js';
import { lastUserText, promptText, type ChatRequest, type Delta, type Provider } from '../provider.js';
import { simulatedAnswer } from './answer.js';

export interface SimulatedOptions {
  tokensPerSec: number;
  ttftMs: number;
}

/**
 * The built-in model: readable, deterministic text at a realistic pace, so Jarvis runs with nothing else
 * installed. For demos, tests and load tests; it is not a language model.
 */
export function simulatedProvider(opts: SimulatedOptions): Provider {
  const gapMs = 1000 / opts.tokensPerSec;
  return {
    id: 'simulated',
    models: () => [{ id: SIMULATED_MODEL, owned_by: 'jarvis', description: 'Jarvis built-in simulator (not a language model): deterministic text for demos, tests and load tests' }],
    ready: async () => {},
    stream: (request, { signal }) => generate(request, signal, opts.ttftMs, gapMs),
  };
}

async function* generate(request: ChatRequest, signal: AbortSignal, ttftMs: number, gapMs: number): AsyncGenerator<Delta[]> {
  signal.throwIfAborted();
  const prompt = lastUserText(request.messages) || promptText(request.messages);
  const answer = simulatedAnswer(prompt);
  const limit = request.maxTokens ?? Infinity;

  // One abort listener and one timer slot for the whole stream: no per-token listener churn.
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const onAbort = () => {
    clearTimeout(timer);
    wake?.();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const until = (at: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, Math.max(0, at - performance.now()));
    });

  try {
    // Scheduled against the start time so the pace does not drift with timer lateness.
    const start = performance.now() + ttftMs;
    let sent = 0;
    for (const token of answer) {
      if (sent >= limit) break;
      await until(start + sent * gapMs);
      signal.throwIfAborted();
      yield [{ type: 'text', text: token }];
      sent++;
    }
    const prompt_tokens = Math.ceil(promptText(request.messages).length / 4);
    yield [
      { type: 'finish', reason: sent < answer.length ? 'length' : 'stop' },
      { type: 'usage', usage: { prompt_tokens, completion_tokens: sent, total_tokens: prompt_tokens + sent } },
    ];
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
