import { SIMULATED_MODEL } from '../../config.js';
import { JarvisError } from '../../errors.js';
import { lastUserText, promptText, type ChatRequest, type Delta, type Provider, type RelayRequest, type RelayResponse } from '../provider.js';
import { simulatedAnswer } from './answer.js';
import { simulatedEmbeddings } from './embeddings.js';

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
    wires: ['openai.chat'],
    models: async () => [{ id: SIMULATED_MODEL, owned_by: 'jarvis', description: 'Jarvis built-in simulator (not a language model): deterministic text for demos, tests and load tests' }],
    ready: async () => {},
    stream: (request, { signal }) => generate(request, signal, opts.ttftMs, gapMs),
    relay: async (request) => relay(request),
  };
}

async function relay(request: RelayRequest): Promise<RelayResponse> {
  if (request.endpoint === 'embeddings') {
    const body = simulatedEmbeddings(request.body, request.model);
    // Labelled, so nobody mistakes these vectors for a real model's.
    return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'x-jarvis-simulated': 'true' }, body: [JSON.stringify(body)] };
  }
  throw new JarvisError('JARVIS_ERR_UNSUPPORTED_VALUE', `The simulator (${SIMULATED_MODEL}) does not serve /v1/completions; use /v1/chat/completions, or a model an upstream serves.`, {
    param: 'model',
  });
}

/**
 * The chunks of one simulated answer, in the shape OpenAI streams, so they take the same path to the client as
 * an upstream's. Role and token chunks have exactly the shape token-chunk.ts recognises, and go unparsed as an
 * upstream's would; the others come with their parsed form.
 */
class SimulatedChunks {
  readonly #head: string;
  readonly #top: Record<string, unknown>;

  constructor(request: ChatRequest) {
    this.#top = { id: request.completionId, object: 'chat.completion.chunk', created: request.created, model: request.model };
    this.#head = `${JSON.stringify(this.#top).slice(0, -1)},"choices":`;
  }

  #parsed(rest: Record<string, unknown>, finish?: string): Delta {
    const chunk = { ...this.#top, ...rest };
    return { wire: 'openai.chat', data: JSON.stringify(chunk), chunk, text: '', finish };
  }

  role(index: number): Delta {
    return { wire: 'openai.chat', data: `${this.#head}[{"index":${index},"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`, chunk: undefined, text: '', finish: undefined };
  }

  token(index: number, text: string): Delta {
    const data = `${this.#head}[{"index":${index},"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}`;
    return { wire: 'openai.chat', data, chunk: undefined, text: index === 0 ? text : '', finish: undefined };
  }

  finish(index: number, reason: string): Delta {
    return this.#parsed({ choices: [{ index, delta: {}, logprobs: null, finish_reason: reason }] }, index === 0 ? reason : undefined);
  }

  /** Usage always goes out, as Jarvis asks every upstream for it; the client sees it only if it asked (http/chunk-frames.ts). */
  usage(prompt_tokens: number, completion_tokens: number): Delta {
    return this.#parsed({ choices: [], usage: { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens } });
  }
}

async function* generate(request: ChatRequest, signal: AbortSignal, ttftMs: number, gapMs: number): AsyncGenerator<Delta[]> {
  signal.throwIfAborted();
  const prompt = lastUserText(request.messages) || promptText(request.messages);
  const answer = simulatedAnswer(prompt);
  const limit = request.maxTokens ?? Infinity;
  const n = typeof request.body.n === 'number' ? request.body.n : 1;
  const chunks = new SimulatedChunks(request);

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
      const batch: Delta[] = [];
      // Every choice of an n > 1 request gets the same text: the simulator is deterministic.
      for (let i = 0; i < n; i++) {
        if (sent === 0) batch.push(chunks.role(i));
        batch.push(chunks.token(i, token));
      }
      yield batch;
      sent++;
    }
    const reason = sent < answer.length ? 'length' : 'stop';
    const end: Delta[] = [];
    for (let i = 0; i < n; i++) end.push(chunks.finish(i, reason));
    end.push(chunks.usage(Math.ceil(promptText(request.messages).length / 4), sent * n));
    yield end;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
