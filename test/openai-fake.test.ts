// The faithful OpenAI fake (fakes/openai/faithful.ts) speaks OpenAI: the official SDK, pointed at it, assembles from
// its stream the same chat.completion it returns unstreamed (text, a long answer, one and two tool calls, a refusal,
// logprobs, annotations, n choices), gets the usage it asked for, does a tool round trip, raises its own error class
// for each HTTP failure after the retries it makes for that status, reports an error event mid-stream, closes the
// request it aborts, and reads the Responses API, completions, embeddings and the model list.
import OpenAI, {
  APIError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
} from 'openai';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, MODELS, STREAM_ERROR, USAGE, snapshotOf, startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

const MODEL = 'gpt-4o-mini';
const WEATHER = { type: 'function' as const, function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { location: { type: 'string' } } } } };
const TIME = { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { location: { type: 'string' } } } } };

let fake: OpenAIUpstream;
beforeAll(async () => {
  fake = await startOpenAIUpstream();
});
afterAll(() => fake.close());

const client = (opts: { maxRetries?: number } = {}) => new OpenAI({ baseURL: fake.url, apiKey: 'sk-test', maxRetries: 2, ...opts });

let tags = 0;
const tag = () => `#o${++tags}`;

/**
 * A completion as the SDK's stream helper assembles it, comparable with the one returned unstreamed: without what
 * the helper adds (each message's `parsed`; SDKs before 7 also kept the last chunk's `obfuscation`).
 */
function assembled(completion: ChatCompletion): Record<string, unknown> {
  const { obfuscation: _, choices, ...rest } = completion as ChatCompletion & { obfuscation?: unknown };
  return {
    ...rest,
    choices: choices.map(({ message, ...choice }) => {
      const { parsed, ...m } = message as typeof message & { parsed?: unknown };
      expect(parsed).toBeNull();
      return { ...choice, message: m };
    }),
  };
}

/** The completion returned unstreamed, without the empty `annotations` that OpenAI sends there but not in a stream. */
function unstreamed(completion: ChatCompletion): Record<string, unknown> {
  return {
    ...completion,
    choices: completion.choices.map(({ message, ...choice }) => {
      const { annotations, ...m } = message;
      return { ...choice, message: annotations?.length ? message : m };
    }),
  };
}

/** Each scenario's request: what it needs (tools, n) to show itself. */
const SCENARIOS: Record<string, (t: string) => Omit<ChatCompletionCreateParamsNonStreaming, 'stream'>> = {
  text: (t) => ({ model: MODEL, messages: [{ role: 'user', content: `What is the answer? ${t}` }] }),
  'long tokens:7': (t) => ({ model: MODEL, messages: [{ role: 'user', content: `scenario:long tokens:7 ${t}` }] }),
  tool: (t) => ({ model: MODEL, tools: [WEATHER], messages: [{ role: 'user', content: `Weather in Paris? ${t}` }] }),
  'tools-2': (t) => ({ model: MODEL, tools: [WEATHER, TIME], messages: [{ role: 'user', content: `scenario:tools-2 ${t}` }] }),
  refusal: (t) => ({ model: MODEL, messages: [{ role: 'user', content: `scenario:refusal ${t}` }] }),
  logprobs: (t) => ({ model: MODEL, logprobs: true, top_logprobs: 1, messages: [{ role: 'user', content: `scenario:logprobs ${t}` }] }),
  annotations: (t) => ({ model: MODEL, messages: [{ role: 'user', content: `scenario:annotations ${t}` }] }),
  n: (t) => ({ model: MODEL, n: 2, messages: [{ role: 'user', content: `scenario:n ${t}` }] }),
};

describe('the openai SDK against the fake', () => {
  describe.each(Object.keys(SCENARIOS))('scenario %s', (name) => {
    it('streams the chat.completion that it returns unstreamed, with the usage asked for', async () => {
      const params = SCENARIOS[name]!(tag());
      const sdk = client();
      const created = await sdk.chat.completions.create(params);
      const streamed = await sdk.chat.completions.stream({ ...params, stream_options: { include_usage: true } }).finalChatCompletion();
      expect(assembled(streamed)).toEqual(unstreamed(created));

      expect(created).toMatchObject({ id: expect.stringMatching(/^chatcmpl-up\w+$/), object: 'chat.completion', model: snapshotOf(MODEL), system_fingerprint: expect.stringMatching(/^fp_/) });
      expect(created.usage).toEqual(USAGE(created.usage!.completion_tokens));
      const message = created.choices[0]!.message;
      switch (name) {
        case 'text':
          expect({ content: message.content, finish: created.choices[0]!.finish_reason, tokens: created.usage!.completion_tokens }).toEqual({ content: 'The answer is 42.', finish: 'stop', tokens: 4 });
          break;
        case 'long tokens:7':
          expect(message.content).toBe('t0 t1 t2 t3 t4 t5 t6 ');
          expect(created.usage!.completion_tokens).toBe(7);
          break;
        case 'tool':
        case 'tools-2': {
          expect(created.choices[0]!.finish_reason).toBe('tool_calls');
          expect(message.content).toBeNull();
          const calls = message.tool_calls!.map((c) => (c.type === 'function' ? [c.function.name, JSON.parse(c.function.arguments)] : c.type));
          expect(calls).toEqual(name === 'tool' ? [['get_weather', { location: 'Paris' }]] : [['get_weather', { location: 'Paris' }], ['get_time', { location: 'Tokyo', unit: 'c' }]]);
          expect(new Set(message.tool_calls!.map((c) => c.id)).size).toBe(calls.length);
          break;
        }
        case 'refusal':
          expect(message).toMatchObject({ content: null, refusal: "I'm sorry, I can't help with that." });
          break;
        case 'logprobs':
          expect(created.choices[0]!.logprobs!.content!.map((l) => l.token).join('')).toBe(message.content);
          break;
        case 'annotations':
          expect(message.annotations).toEqual([{ type: 'url_citation', url_citation: { start_index: 0, end_index: 5, title: 'Example', url: 'https://example.com/' } }]);
          break;
        case 'n':
          expect(created.choices.map((c) => [c.index, c.message.content])).toEqual([[0, 'Choice 0 says hi.'], [1, 'Choice 1 says hi.']]);
          break;
      }
    });
  });

  it('streams usage only when asked: null in every chunk, then in one more chunk without choices', async () => {
    const sdk = client();
    const params = SCENARIOS.text!(tag());
    const chunks = async (includeUsage: boolean) => {
      const out: ChatCompletionChunk[] = [];
      for await (const c of await sdk.chat.completions.create({ ...params, stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) })) out.push(c);
      return out;
    };
    const without = await chunks(false);
    expect(without.every((c) => !('usage' in c))).toBe(true);
    const withUsage = await chunks(true);
    expect(withUsage.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(withUsage.at(-1)).toMatchObject({ choices: [], usage: USAGE(4) });
    // The same chunks otherwise, under one id.
    expect(withUsage.slice(0, -1).map(({ usage: _u, ...c }) => c)).toEqual(without);
    expect(new Set(withUsage.map((c) => c.id)).size).toBe(1);
  });

  it('gets the reasoning as DeepSeek and vLLM stream it (reasoning_content), pieced together to the unstreamed message', async () => {
    const params = { model: MODEL, messages: [{ role: 'user' as const, content: `scenario:reasoning 2+2? ${tag()}` }] };
    const sdk = client();
    let reasoning = '';
    let content = '';
    for await (const c of await sdk.chat.completions.create({ ...params, stream: true })) {
      const delta = c.choices[0]?.delta as { content?: string | null; reasoning_content?: string | null } | undefined;
      reasoning += delta?.reasoning_content ?? '';
      content += delta?.content ?? '';
    }
    const created = await sdk.chat.completions.create(params);
    expect(created.choices[0]!.message).toMatchObject({ content, reasoning_content: reasoning });
    expect({ reasoning, content }).toEqual({ reasoning: 'The user wants a sum.', content: '2 + 2 = 4.' });
  });

  it('does a tool round trip: the tool result comes back quoted, streamed and not', async () => {
    const sdk = client();
    for (const stream of [false, true]) {
      const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: `What is the weather in Paris? ${tag()}` }];
      const ask = () => (stream ? sdk.chat.completions.stream({ model: MODEL, messages, tools: [WEATHER] }).finalChatCompletion() : sdk.chat.completions.create({ model: MODEL, messages, tools: [WEATHER] }));
      const first = await ask();
      const call = first.choices[0]!.message.tool_calls![0]!;
      messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' });
      const second = await ask();
      expect(second.choices[0]!.message.content).toBe('The tool says: {"temperature":21}.');
      expect(second.choices[0]!.finish_reason).toBe('stop');
    }
  });

  describe('HTTP errors', () => {
    const CLASSES: Record<string, [new (...args: never[]) => APIError, number]> = {
      'http-400': [BadRequestError, 1],
      'http-401': [AuthenticationError, 1],
      'http-403': [PermissionDeniedError, 1],
      'http-404': [NotFoundError, 1],
      'http-429': [RateLimitError, 3],
      'http-500': [InternalServerError, 3],
      'http-503': [InternalServerError, 3],
    };

    it.each(Object.keys(ERRORS))('%s: its error class, body and headers, after the retries the SDK makes for it', async (scenario) => {
      const t = tag();
      const [cls, requests] = CLASSES[scenario]!;
      const err = await client().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `scenario:${scenario} ${t}` }] }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      const { status, error, headers } = ERRORS[scenario]!;
      expect(err).toMatchObject({ status, error, code: error.code, type: error.type, param: error.param });
      for (const [name, value] of Object.entries(headers ?? {})) expect((err as APIError).headers?.get(name)).toBe(value);
      expect(fake.requestsFor(t)).toHaveLength(requests);
    });

    it('a 502 HTML page (a proxy in front of OpenAI): InternalServerError with the page, after the retries', async () => {
      const t = tag();
      const err = await client({ maxRetries: 1 }).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `scenario:http-502-html ${t}` }] }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(InternalServerError);
      expect(err).toMatchObject({ status: 502 });
      expect((err as Error).message).toContain('502 Bad Gateway');
      expect(fake.requestsFor(t)).toHaveLength(2);
    });
  });

  describe('errors in a stream', () => {
    const read = async (prompt: string) => {
      let text = '';
      const err = await (async () => {
        for await (const c of await client().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: prompt }] })) text += c.choices[0]?.delta.content ?? '';
      })().then(() => undefined, (e: unknown) => e);
      return { text, err };
    };

    it('error-mid: the text so far, then an APIError with the event the fake sent; not retried', async () => {
      const t = tag();
      const { text, err } = await read(`scenario:error-mid ${t}`);
      expect(text).toBe('Hello there');
      expect(err).toBeInstanceOf(APIError);
      expect(err).toMatchObject({ error: STREAM_ERROR.error, type: 'server_error' });
      expect(fake.requestsFor(t)).toHaveLength(1);
    });

    it('error-first: an APIError before any text', async () => {
      const { text, err } = await read(`scenario:error-first ${tag()}`);
      expect({ text, err }).toMatchObject({ text: '', err: expect.any(APIError) });
    });

    it('error-mid unstreamed: the 500 OpenAI answers, retried', async () => {
      const t = tag();
      const err = await client().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `scenario:error-mid ${t}` }] }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(InternalServerError);
      expect(err).toMatchObject({ status: 500, error: STREAM_ERROR.error });
      expect(fake.requestsFor(t)).toHaveLength(3);
    });
  });

  it('aborting mid-stream closes the request at the fake, which had not finished its answer', async () => {
    const t = tag();
    const ac = new AbortController();
    const stream = await client().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `scenario:long tokens:500 delay:20 ${t}` }] }, { signal: ac.signal });
    let chunks = 0;
    // The SDK ends the loop quietly when its own signal aborted it (a user abort is not an error to iterate into).
    const err = await (async () => {
      for await (const _ of stream) if (++chunks === 3) ac.abort();
    })().then(() => undefined, (e: unknown) => e);
    expect(err === undefined || err instanceof APIUserAbortError).toBe(true);
    expect(chunks).toBe(3);
    const [rec] = fake.requestsFor(t);
    await rec!.closed;
    expect(rec!.clientClosed).toBe(true);
  });

  it('streams the Response of the Responses API that it returns unstreamed, for text and a function call', async () => {
    const sdk = client();
    for (const tools of [[], [{ type: 'function' as const, name: 'get_weather', parameters: { type: 'object', properties: {} }, strict: false }]]) {
      const params = { model: MODEL, input: `What is the answer? ${tag()}`, tools };
      const created = await sdk.responses.create(params);
      const { output_parsed: parsed, output, ...streamed } = await sdk.responses.stream(params).finalResponse();
      expect(parsed).toBeNull();
      const withoutParsed = output.map((item) => {
        if (item.type === 'function_call') {
          const { parsed_arguments: args, ...rest } = item as typeof item & { parsed_arguments?: unknown };
          expect(args).toBeNull();
          return rest;
        }
        if (item.type === 'message') return { ...item, content: item.content.map((p) => { const { parsed: _p, ...rest } = p as typeof p & { parsed?: unknown }; return rest; }) };
        return item;
      });
      expect({ ...streamed, output: withoutParsed }).toEqual(created);
      if (tools.length) expect(created.output).toMatchObject([{ type: 'function_call', name: 'get_weather', arguments: '{"location":"Paris"}' }]);
      else expect(created.output_text).toBe('The answer is 42.');
    }
  });

  it('answers completions streamed and not, embeddings as floats or base64, and lists its models', async () => {
    const sdk = client();
    const completion = await sdk.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Where is Paris?' });
    let streamed = '';
    for await (const c of await sdk.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Where is Paris?', stream: true })) streamed += c.choices[0]?.text ?? '';
    expect(streamed).toBe(completion.choices[0]!.text);
    expect(completion.choices[0]!.text).toBe(' Paris is in France.');

    const floats = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: ['ab', 'abc'], encoding_format: 'float' });
    const decoded = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: ['ab', 'abc'] });
    expect(floats.data.map((d) => d.embedding)).toEqual([[0.2, -0.4, 0.6].map((v) => expect.closeTo(v, 6)), [0.6, -1.2, 1.8].map((v) => expect.closeTo(v, 6))]);
    expect(decoded.data.map((d) => d.embedding.map((v) => Math.fround(v)))).toEqual(floats.data.map((d) => d.embedding.map((v) => Math.fround(v))));

    const ids: string[] = [];
    for await (const m of sdk.models.list()) ids.push(m.id);
    expect(ids).toEqual(MODELS.map((m) => m.id));
    expect(await sdk.models.retrieve(MODEL)).toMatchObject({ id: MODEL, object: 'model' });
    await expect(sdk.models.retrieve('gpt-9')).rejects.toBeInstanceOf(NotFoundError);
  });
});
