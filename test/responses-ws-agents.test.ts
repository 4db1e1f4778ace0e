// The OpenAI Agents SDK over the Responses API's WebSocket mode (GET /v1/responses upgraded): an agent with a
// function tool, its model an OpenAIResponsesWSModel pointed at Jarvis, Jarvis in front of the faithful OpenAI
// fake. A run goes model → tool call → the SDK runs the tool → model → text quoting the tool's result, both turns
// `response.create` messages on one socket. The WS model has no HTTP fallback, so a run that completes is itself
// the proof; Jarvis's metrics and log say so too (no POST /v1/responses, one connection serving both turns), and
// the responses are stored under the key the handshake's Authorization header named.
import { Agent, OpenAIResponsesWSModel, run, setTracingDisabled, tool, type RunItem } from '@openai/agents';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WS from 'ws';
import { z } from 'zod';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../fakes/openai/index.js';

const ALICE = 'sk-alice-ws-agents-0001';
const BOB = 'sk-bob-ws-agents-00002';
const MODEL = 'gpt-4o-mini';
/** What the fake calls the first tool with (fakes/openai/faithful.ts, scenario `tool`). */
const FAKE_ARGS = { location: 'Paris' };
const TOOL_RESULT = 'sunny in Paris';
/** The fake's answer once the conversation ends with a tool's result: it quotes it. */
const FINAL = `The tool says: ${TOOL_RESULT}.`;

let up: OpenAIUpstream;
let jarvis: TestJarvis;
/** globalThis.WebSocket as it was (Node 22+: undici's, a lazy accessor; Node 20: none), put back after the file. */
const savedWebSocket = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');

beforeAll(async () => {
  // The WS model opens `new globalThis.WebSocket(url, { headers })` (responsesWebSocketConnection.mjs). Node 20
  // has no global WebSocket; ws's, which takes the object as its options, serves on every Node version alike.
  Object.defineProperty(globalThis, 'WebSocket', { value: WS, writable: true, configurable: true, enumerable: false });
  setTracingDisabled(true);
  up = await startOpenAIUpstream();
  jarvis = await startJarvis({ apiKeys: [`alice=${ALICE}`, `bob=${BOB}`], upstreams: [{ name: 'openai', baseUrl: up.url, models: [MODEL] }] });
});
afterAll(async () => {
  await jarvis?.close();
  await up?.close();
  if (savedWebSocket) Object.defineProperty(globalThis, 'WebSocket', savedWebSocket);
  else delete (globalThis as { WebSocket?: unknown }).WebSocket;
});

/** Every WS model a test made: closed after it, so no socket outlives the test (and Jarvis's close has none to wait for). */
const models: OpenAIResponsesWSModel[] = [];
afterEach(async () => {
  await Promise.all(models.splice(0).map((m) => m.close()));
});

function wsModel(key = ALICE): OpenAIResponsesWSModel {
  const model = new OpenAIResponsesWSModel(new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: key, maxRetries: 0 }), MODEL);
  models.push(model);
  return model;
}

/** A weather agent whose tool records what it was called with. */
function weatherAgent(model: OpenAIResponsesWSModel) {
  const calls: unknown[] = [];
  const getWeather = tool({
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: z.object({ location: z.string() }),
    execute: (args) => {
      calls.push(args);
      return `sunny in ${args.location}`;
    },
  });
  const agent = new Agent({ name: 'Weather', instructions: 'Answer with the weather tool.', model, tools: [getWeather] });
  return { agent, calls };
}

/** The sum of the series whose name and labels start with `prefix`, from one scrape of /metrics. */
async function metricSum(prefix: string): Promise<number> {
  const res = await fetch(`${jarvis.url}/metrics`, { headers: { authorization: `Bearer ${ALICE}` } });
  expect(res.status).toBe(200);
  return (await res.text())
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

const POSTS = 'jarvis_http_requests_total{route="/v1/responses",method="POST"';

type ChatMessage = { role: string; content: unknown; tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[]; tool_call_id?: string };

/** The upstream's requests of one run (its tag is in the user's message, which every turn carries). */
function upstreamTurns(tag: string): { messages: ChatMessage[]; tools?: unknown }[] {
  return up.requests.filter((r) => JSON.stringify(r.body).includes(tag)).map((r) => r.body as { messages: ChatMessage[]; tools?: unknown });
}

/** The call id of the run's one tool call, as the SDK saw it. */
function callIdOf(items: RunItem[]): string {
  const called = items.filter((i) => i.type === 'tool_call_item');
  expect(called).toHaveLength(1);
  const raw = called[0]!.rawItem as { type: string; name?: string; callId?: string; arguments?: string };
  expect(raw).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: JSON.stringify(FAKE_ARGS) });
  return raw.callId!;
}

/** What the upstream got for one run: the tool offered, then the conversation with the call and its result. */
function expectUpstreamRound(tag: string, prompt: string, callId: string): void {
  const turns = upstreamTurns(tag);
  expect(turns).toHaveLength(2);
  const [first, last] = turns;
  const offered = [{ type: 'function', function: expect.objectContaining({ name: 'get_weather', description: 'The weather in a city', parameters: expect.objectContaining({ type: 'object', required: ['location'] }) }) }];
  expect(first!.tools).toEqual(offered);
  expect(first!.messages).toEqual([
    { role: 'system', content: 'Answer with the weather tool.' },
    { role: 'user', content: prompt },
  ]);
  expect(last!.tools).toEqual(offered);
  expect(last!.messages).toEqual([
    { role: 'system', content: 'Answer with the weather tool.' },
    { role: 'user', content: prompt },
    { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(FAKE_ARGS) } }] },
    { role: 'tool', tool_call_id: callId, content: TOOL_RESULT },
  ]);
}

describe('the Agents SDK over GET /v1/responses (WebSocket)', () => {
  it('runs a tool-using agent over one socket: tool call, the tool, then the text quoting its result', async () => {
    const tag = 'ws-agents-run';
    const prompt = `What is the weather in Paris? scenario:tool ${tag}`;
    const postsBefore = await metricSum(POSTS);
    const opensBefore = (await jarvis.logs()).split('\n').filter((l) => l.includes(' ws_open ')).length;
    const model = wsModel();
    const { agent, calls } = weatherAgent(model);

    const result = await run(agent, prompt);

    expect(calls).toEqual([FAKE_ARGS]);
    expect(result.finalOutput).toBe(FINAL);
    const callId = callIdOf(result.newItems);
    expect(callId).toMatch(/^call_/);
    expect(result.newItems.find((i) => i.type === 'tool_call_output_item')).toMatchObject({ output: TOOL_RESULT });
    expectUpstreamRound(tag, prompt, callId);

    // The key of the handshake's Authorization header reached Jarvis: the responses are stored as alice's.
    expect(result.lastResponseId).toMatch(/^resp_/);
    const sdk = (key: string) => new OpenAI({ baseURL: `${jarvis.url}/v1`, apiKey: key, maxRetries: 0 });
    const stored = await sdk(ALICE).responses.retrieve(result.lastResponseId!);
    expect(stored).toMatchObject({ id: result.lastResponseId, status: 'completed', output_text: FINAL });
    await expect(sdk(BOB).responses.retrieve(result.lastResponseId!)).rejects.toMatchObject({ status: 404 });

    // Both turns came over the socket: no POST /v1/responses, one connection, which served two responses.
    expect(await metricSum(POSTS)).toBe(postsBefore);
    await model.close();
    const opened = (log: string) => log.split('\n').filter((l) => l.includes(' ws_open ')).slice(opensBefore);
    const connectionOf = (line: string | undefined) => (line === undefined ? undefined : /connection=(\S+)/.exec(line)?.[1]);
    const log = await jarvis.waitForLog((l) => {
      const connection = connectionOf(opened(l)[0]);
      return connection !== undefined && l.includes(` ws_close connection=${connection} `);
    });
    expect(opened(log)).toHaveLength(1);
    expect(opened(log)[0]).toContain('path=/v1/responses');
    expect(log).toMatch(new RegExp(` ws_close connection=${connectionOf(opened(log)[0])} .*responses=2`));
  });

  it('streams a tool-using run: the tool events, then the text deltas of the final answer', async () => {
    const tag = 'ws-agents-stream';
    const prompt = `What is the weather in Paris? scenario:tool ${tag}`;
    const postsBefore = await metricSum(POSTS);
    const { agent, calls } = weatherAgent(wsModel());

    const stream = await run(agent, prompt, { stream: true });
    const names: string[] = [];
    const modelEvents: string[] = [];
    let deltas = '';
    for await (const e of stream) {
      if (e.type === 'run_item_stream_event') names.push(e.name);
      else if (e.type === 'raw_model_stream_event') {
        if (e.data.type === 'output_text_delta') deltas += e.data.delta;
        if (e.data.type === 'model') modelEvents.push((e.data.event as { type: string }).type);
      }
    }
    await stream.completed;

    expect(stream.error).toBeNull();
    expect(calls).toEqual([FAKE_ARGS]);
    expect(stream.finalOutput).toBe(FINAL);
    expect(deltas).toBe(FINAL);
    expect(names).toEqual(['tool_called', 'tool_output', 'message_output_created']);
    // The Responses events, as sent over the socket: two responses, each ending response.completed.
    expect(modelEvents.filter((t) => t === 'response.created')).toHaveLength(2);
    expect(modelEvents.filter((t) => t === 'response.completed')).toHaveLength(2);
    expect(modelEvents).toContain('response.function_call_arguments.done');
    expect(modelEvents.at(-1)).toBe('response.completed');
    expectUpstreamRound(tag, prompt, callIdOf(stream.newItems));
    expect(await metricSum(POSTS)).toBe(postsBefore);
  });

  it('a key Jarvis does not know is refused at the upgrade: the run fails, no tool runs, the upstream is not asked', async () => {
    const tag = 'ws-agents-refused';
    const { agent, calls } = weatherAgent(wsModel('sk-nobody-ws-agents-01'));
    await expect(run(agent, `What is the weather in Paris? scenario:tool ${tag}`)).rejects.toThrow(/401/);
    expect(calls).toEqual([]);
    expect(upstreamTurns(tag)).toEqual([]);
  });
});
