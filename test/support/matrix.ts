// The square of client APIs and upstreams, as adapters the matrix test drives the same way: a client asks a turn
// through its own official SDK and hands back what it got in one shape (text, reasoning, tool calls, usage), and
// continues a tool loop the way that API does; an upstream says which prompt gets which answer and what it was
// sent. What each cell supports is SUPPORT, which docs/providers.md shows as a table (a test keeps them equal).
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startAnthropicUpstream, type AnthropicUpstream } from '../../fakes/anthropic/index.js';
import { startGeminiUpstream, type GeminiUpstream } from '../../fakes/gemini/index.js';
import type { FakeRequest } from '../../fakes/http.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../../fakes/openai/index.js';
import type { UpstreamConfig } from '../../src/config.js';

export const CLIENTS = ['Chat Completions', 'Responses API', 'Messages API'] as const;
export const UPSTREAMS = ['OpenAI-compatible', 'Anthropic', 'Gemini', 'Simulator'] as const;
export const BEHAVIOURS = ['Text', 'Tools', 'Reasoning', 'Usage', 'Errors', 'Abort', 'Barge-in'] as const;
export type ClientName = (typeof CLIENTS)[number];
export type UpstreamName = (typeof UPSTREAMS)[number];
export type Behaviour = (typeof BEHAVIOURS)[number];

/** What a cell does for each behaviour, by upstream (every client API gets the same): '✓…' is tested, '–' is not there to test. */
const BY_UPSTREAM: Record<UpstreamName, Record<Behaviour, string>> = {
  'OpenAI-compatible': { Text: '✓', Tools: '✓', Reasoning: '✓ unsigned', Usage: '✓ estimated when none', Errors: '✓', Abort: '✓', 'Barge-in': '✓' },
  Anthropic: { Text: '✓', Tools: '✓', Reasoning: '✓ signed', Usage: '✓', Errors: '✓', Abort: '✓', 'Barge-in': '✓' },
  Gemini: { Text: '✓', Tools: '✓', Reasoning: '✓ signed', Usage: '✓ estimated when none', Errors: '✓', Abort: '✓', 'Barge-in': '✓' },
  Simulator: { Text: '✓', Tools: '–', Reasoning: '–', Usage: '✓', Errors: '–', Abort: '✓', 'Barge-in': '✓' },
};

export const SUPPORT: { client: ClientName; upstream: UpstreamName; cells: Record<Behaviour, string> }[] = CLIENTS.flatMap((client) =>
  UPSTREAMS.map((upstream) => ({ client, upstream, cells: BY_UPSTREAM[upstream] })),
);

export const supports = (upstream: UpstreamName, b: Behaviour): boolean => BY_UPSTREAM[upstream][b].startsWith('✓');

/** The table docs/providers.md must hold, row for row. */
export function supportTable(): string[][] {
  return [['Client API', 'Upstream', ...BEHAVIOURS], ...SUPPORT.map((r) => [r.client, r.upstream, ...BEHAVIOURS.map((b) => r.cells[b])])];
}

/** The rows of the first markdown table after `heading` in `markdown`, each a list of its cells. */
export function tableAfter(markdown: string, heading: string): string[][] {
  const at = markdown.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`no heading ${heading}`);
  const lines = markdown.slice(at).split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith('|')) break;
    const cells = line.slice(1, -1).split('|').map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    rows.push(cells);
  }
  return rows;
}

export interface Call {
  id: string;
  name: string;
  arguments: string;
}

export interface Usage {
  input: number;
  output: number;
  estimated: boolean;
}

/** One answer as any client API got it. */
export interface Answer {
  text: string;
  reasoning: string;
  calls: Call[];
  usage: Usage | undefined;
  model: string;
  /** The id a Responses answer chains by. */
  id: string;
  /** The next turn of a tool loop: each call's result sent back the way this API sends it. */
  answerCalls(results: string[]): Promise<Answer>;
}

export interface Ask {
  stream: boolean;
  tools?: boolean;
  reasoning?: boolean;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Called with each piece of text as it arrives (streamed). */
  onText?: (text: string) => void;
  /** Responses API: the response this turn continues. */
  previousResponseId?: string;
}

export interface Client {
  readonly name: ClientName;
  ask(model: string, prompt: string, opts: Ask): Promise<Answer>;
}

const WEATHER_PARAMS = { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['location'], additionalProperties: false };
const CHAT_TOOLS: OpenAI.Chat.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: WEATHER_PARAMS } }];
const RESPONSES_TOOLS: OpenAI.Responses.FunctionTool[] = [{ type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: WEATHER_PARAMS, strict: false }];
const MESSAGES_TOOLS: Anthropic.Tool[] = [{ name: 'get_weather', description: 'The weather in a city', input_schema: WEATHER_PARAMS as Anthropic.Tool.InputSchema }];

type Obj = Record<string, unknown>;
const usageOf = (u: Obj | null | undefined, input: string, output: string): Usage | undefined =>
  u ? { input: Number(u[input]), output: Number(u[output]), estimated: u.estimated === true } : undefined;

/** Chat Completions through the `openai` SDK: a stream read chunk by chunk as a client accumulates it, or one completion. */
export function chatClient(baseURL: string): Client {
  const sdk = new OpenAI({ apiKey: 'sk-unused', baseURL: `${baseURL}/v1`, maxRetries: 0 });
  const turn = async (model: string, messages: OpenAI.Chat.ChatCompletionMessageParam[], opts: Ask): Promise<Answer> => {
    const params = { model, messages, ...(opts.tools ? { tools: CHAT_TOOLS } : {}), ...(opts.reasoning ? { reasoning_effort: 'low' as const } : {}) };
    const req = { ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
    let text = '';
    let reasoning = '';
    let usage: Usage | undefined;
    let served = '';
    let assistant: Obj;
    const calls: Call[] = [];
    if (opts.stream) {
      const thinking: Obj[] = [];
      const stream = await sdk.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }, req);
      for await (const chunk of stream) {
        served = chunk.model;
        if (chunk.usage) usage = usageOf(chunk.usage as unknown as Obj, 'prompt_tokens', 'completion_tokens');
        const delta = chunk.choices[0]?.delta as (Obj & OpenAI.Chat.ChatCompletionChunk.Choice.Delta) | undefined;
        if (!delta) continue;
        if (delta.content) {
          text += delta.content;
          opts.onText?.(delta.content);
        }
        if (typeof delta.reasoning_content === 'string') reasoning += delta.reasoning_content;
        if (Array.isArray(delta.thinking_blocks)) thinking.push(...(delta.thinking_blocks as Obj[]));
        for (const c of delta.tool_calls ?? []) {
          const call = (calls[c.index] ??= { id: '', name: '', arguments: '' });
          if (c.id) call.id = c.id;
          if (c.function?.name) call.name = c.function.name;
          call.arguments += c.function?.arguments ?? '';
        }
      }
      assistant = {
        role: 'assistant',
        content: text === '' ? null : text,
        ...(calls.length > 0 ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {}),
        ...(thinking.length > 0 ? { thinking_blocks: thinking } : {}),
      };
    } else {
      const completion = await sdk.chat.completions.create(params, req);
      served = completion.model;
      usage = usageOf(completion.usage as unknown as Obj, 'prompt_tokens', 'completion_tokens');
      const message = completion.choices[0]!.message as OpenAI.Chat.ChatCompletionMessage & Obj;
      text = message.content ?? '';
      reasoning = typeof message.reasoning_content === 'string' ? message.reasoning_content : '';
      for (const c of message.tool_calls ?? []) if (c.type === 'function') calls.push({ id: c.id, name: c.function.name, arguments: c.function.arguments });
      // A client sends back the message as it got it.
      assistant = message;
    }
    return {
      text,
      reasoning,
      calls,
      usage,
      model: served,
      id: '',
      answerCalls: (results) =>
        turn(model, [...messages, assistant as unknown as OpenAI.Chat.ChatCompletionMessageParam, ...calls.map((c, i) => ({ role: 'tool' as const, tool_call_id: c.id, content: results[i] ?? '' }))], opts),
    };
  };
  return { name: 'Chat Completions', ask: (model, prompt, opts) => turn(model, [{ role: 'user', content: prompt }], opts) };
}

/** The Responses API through the `openai` SDK: its stream helper's final response, or one response; tool loops chain by previous_response_id. */
export function responsesClient(baseURL: string): Client {
  const sdk = new OpenAI({ apiKey: 'sk-unused', baseURL: `${baseURL}/v1`, maxRetries: 0 });
  const turn = async (params: OpenAI.Responses.ResponseCreateParamsNonStreaming, opts: Ask): Promise<Answer> => {
    const req = { ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
    let r: OpenAI.Responses.Response | undefined;
    if (opts.stream) {
      // Read event by event: an interrupted answer ends response.incomplete, a failed one response.failed, and the
      // stream helper's finalResponse() knows only response.completed.
      const stream = await sdk.responses.create({ ...params, stream: true }, req);
      for await (const e of stream) {
        if (e.type === 'response.output_text.delta') opts.onText?.(e.delta);
        if (e.type === 'response.completed' || e.type === 'response.incomplete' || e.type === 'response.failed') r = e.response;
      }
      if (!r) throw new Error('the stream ended without its response');
      if (r.status === 'failed') throw Object.assign(new Error(r.error?.message ?? 'response.failed'), { error: r.error });
    } else r = await sdk.responses.create(params, req);
    const done = r;
    const calls = done.output.flatMap((o) => (o.type === 'function_call' ? [{ id: o.call_id, name: o.name, arguments: o.arguments }] : []));
    const reasoning = done.output
      .flatMap((o) => (o.type === 'reasoning' ? [...(o.content ?? []).map((c) => c.text), ...o.summary.map((s) => s.text)] : []))
      .join('');
    return {
      text: done.output.flatMap((o) => (o.type === 'message' ? o.content.map((c) => (c.type === 'output_text' ? c.text : '')) : [])).join(''),
      reasoning,
      calls,
      usage: usageOf(done.usage as unknown as Obj, 'input_tokens', 'output_tokens'),
      model: done.model,
      id: done.id,
      answerCalls: (results) =>
        turn({ ...params, previous_response_id: done.id, input: calls.map((c, i) => ({ type: 'function_call_output' as const, call_id: c.id, output: results[i] ?? '' })) }, opts),
    };
  };
  return {
    name: 'Responses API',
    ask: (model, prompt, opts) =>
      turn({ model, input: prompt, ...(opts.previousResponseId ? { previous_response_id: opts.previousResponseId } : {}), ...(opts.tools ? { tools: RESPONSES_TOOLS } : {}), ...(opts.reasoning ? { reasoning: { effort: 'low' as const } } : {}) }, opts),
  };
}

/** The Messages API through `@anthropic-ai/sdk`: its stream helper's final message, or one message; tool results go back as a user turn. */
export function messagesClient(baseURL: string): Client {
  const sdk = new Anthropic({ apiKey: 'sk-ant-unused', baseURL, maxRetries: 0 });
  const turn = async (model: string, messages: Anthropic.MessageParam[], opts: Ask): Promise<Answer> => {
    const params: Anthropic.MessageCreateParamsNonStreaming = {
      model,
      max_tokens: 4096,
      messages,
      ...(opts.tools ? { tools: MESSAGES_TOOLS } : {}),
      ...(opts.reasoning ? { thinking: { type: 'enabled' as const, budget_tokens: 2048 } } : {}),
    };
    const req = { ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
    let m: Anthropic.Message;
    let estimated = false;
    if (opts.stream) {
      const stream = sdk.messages.stream(params, req);
      stream.on('text', (t) => opts.onText?.(t));
      // The helper keeps the counts of message_delta's usage; what else it says is read from the event itself.
      stream.on('streamEvent', (e) => {
        if (e.type === 'message_delta' && (e.usage as unknown as Obj).estimated === true) estimated = true;
      });
      m = await stream.finalMessage();
    } else {
      m = await sdk.messages.create(params, req);
      estimated = (m.usage as unknown as Obj).estimated === true;
    }
    const calls = m.content.flatMap((b) => (b.type === 'tool_use' ? [{ id: b.id, name: b.name, arguments: JSON.stringify(b.input) }] : []));
    return {
      text: m.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join(''),
      reasoning: m.content.flatMap((b) => (b.type === 'thinking' ? [b.thinking] : [])).join(''),
      calls,
      usage: { input: m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0) + (m.usage.cache_creation_input_tokens ?? 0), output: m.usage.output_tokens, estimated },
      model: m.model,
      id: m.id,
      answerCalls: (results) =>
        turn(model, [...messages, { role: 'assistant', content: m.content as Anthropic.ContentBlockParam[] }, { role: 'user', content: calls.map((c, i) => ({ type: 'tool_result' as const, tool_use_id: c.id, content: results[i] ?? '' })) }], opts),
    };
  };
  return { name: 'Messages API', ask: (model, prompt, opts) => turn(model, [{ role: 'user', content: prompt }], opts) };
}

/** A fake of each provider, and the upstreams config that names them `openai`, `anthropic` and `gemini`. */
export interface Providers {
  openai: OpenAIUpstream;
  anthropic: AnthropicUpstream;
  gemini: GeminiUpstream;
  /** Each upstream serving the models given for it (none: it serves routes only). */
  upstreams(models?: Partial<Record<'openai' | 'anthropic' | 'gemini', string[]>>): UpstreamConfig[];
  close(): Promise<void>;
}

export async function startProviders(): Promise<Providers> {
  const [openai, anthropic, gemini] = await Promise.all([startOpenAIUpstream(), startAnthropicUpstream({ apiKey: 'sk-ant-up' }), startGeminiUpstream({ apiKey: 'gk-up' })]);
  return {
    openai,
    anthropic,
    gemini,
    upstreams: (models = {}) => [
      { name: 'openai', baseUrl: openai.url, ...(models.openai ? { models: models.openai } : {}) },
      { name: 'anthropic', provider: 'anthropic', baseUrl: anthropic.url, apiKey: 'sk-ant-up', ...(models.anthropic ? { models: models.anthropic } : {}) },
      { name: 'gemini', provider: 'gemini', baseUrl: gemini.url, apiKey: 'gk-up', ...(models.gemini ? { models: models.gemini } : {}) },
    ],
    close: async () => {
      await Promise.all([openai.close(), anthropic.close(), gemini.close()]);
    },
  };
}

/** What an upstream request holds of a conversation, whatever its wire: the tool results it carries (by call), and the assistant texts. */
export function sentOf(upstream: UpstreamName, req: FakeRequest): { toolResults: number; assistantText: string[] } {
  const body = req.body as Obj;
  if (upstream === 'Gemini') {
    const contents = (body.contents as { role: string; parts: Obj[] }[]) ?? [];
    const last = contents.at(-1)!;
    return {
      toolResults: last.parts.filter((p) => p.functionResponse).length,
      assistantText: contents.filter((c) => c.role === 'model').map((c) => c.parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('')),
    };
  }
  const messages = (body.messages as { role: string; content: unknown }[]) ?? [];
  if (upstream === 'Anthropic') {
    const last = messages.at(-1)!;
    const blocks = (c: unknown) => (Array.isArray(c) ? (c as Obj[]) : [{ type: 'text', text: c }]);
    return {
      toolResults: blocks(last.content).filter((b) => b.type === 'tool_result').length,
      assistantText: messages.filter((m) => m.role === 'assistant').map((m) => blocks(m.content).map((b) => (b.type === 'text' ? String(b.text) : '')).join('')),
    };
  }
  let toolResults = 0;
  for (let i = messages.length - 1; i >= 0 && messages[i]!.role === 'tool'; i--) toolResults++;
  return { toolResults, assistantText: messages.filter((m) => m.role === 'assistant').map((m) => (typeof m.content === 'string' ? m.content : '')) };
}
