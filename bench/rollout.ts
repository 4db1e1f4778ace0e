// Scenario 9's tool loop, the parts both ends share and nothing else: what the tool-loop upstream answers
// (bench/tool-loop-mock.ts), what the rollout client sends and reads of each turn (bench/rollout-client.ts), and
// the figures the report takes from the rollouts. Pure: no process, socket or clock.

type Json = Record<string, unknown>;

/** The function the rollout's model calls (the one tool the client declares, in the Responses API's shape). */
export const TOOL_NAME = 'lookup';
export const TOOLS = [
  { type: 'function', name: TOOL_NAME, description: 'Looks a fact up.', parameters: { type: 'object', properties: { step: { type: 'integer' }, query: { type: 'string' } }, required: ['step', 'query'] } },
];

/**
 * The id of the call the upstream makes when the conversation holds `results` tool results: the client checks
 * that turn k's call is `call_k`, which proves the upstream saw the whole history (previous_response_id carried it).
 */
export const callIdOf = (results: number): string => `call_${results}`;

/** The tool results (role `tool` messages) of a Chat Completions request's conversation. */
export function toolResultsIn(body: Json): number {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  let n = 0;
  for (const m of messages) if (m?.role === 'tool') n++;
  return n;
}

/**
 * The SSE frames of the upstream's answer to one turn, as OpenAI streams them: a call of the first tool while the
 * conversation has fewer than `calls` tool results (its arguments in three pieces), else a text answer of `tokens`
 * tokens in the OpenAI mock's compact chunk shape (`tok0 `, `tok1 `, ...). A usage chunk when the request asks for
 * it (`stream_options.include_usage`), then `[DONE]`.
 */
export function toolLoopFrames(body: Json, opts: { calls: number; tokens: number; id: string }): string[] {
  const results = toolResultsIn(body);
  const model = typeof body.model === 'string' ? body.model : 'mock-model';
  const head = `{"id":${JSON.stringify(opts.id)},"object":"chat.completion.chunk","created":1764590000,"model":${JSON.stringify(model)},"choices":[`;
  const frame = (rest: string) => `data: ${head}${rest}\n\n`;
  const frames: string[] = [];
  let finish: string;
  let completion: number;
  if (results < opts.calls) {
    const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
    const fn = tools[0]?.function as Json | undefined;
    const name = typeof fn?.name === 'string' ? fn.name : TOOL_NAME;
    const args = JSON.stringify({ step: results, query: `fact ${results}` });
    const call = { index: 0, id: callIdOf(results), type: 'function', function: { name, arguments: '' } };
    frames.push(frame(`{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[${JSON.stringify(call)}]},"logprobs":null,"finish_reason":null}]}`));
    for (const piece of [args.slice(0, 3), args.slice(3, 12), args.slice(12)]) {
      frames.push(frame(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(piece)}}}]},"logprobs":null,"finish_reason":null}]}`));
    }
    finish = 'tool_calls';
    completion = 12;
  } else {
    frames.push(frame('{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}'));
    for (let i = 0; i < opts.tokens; i++) frames.push(frame(`{"index":0,"delta":{"content":"tok${i} "},"finish_reason":null}]}`));
    finish = 'stop';
    completion = opts.tokens;
  }
  frames.push(frame(`{"index":0,"delta":{},"finish_reason":"${finish}"}]}`));
  if ((body.stream_options as Json | undefined)?.include_usage === true) {
    const prompt = 20 + 30 * results;
    frames.push(`data: ${head}],"usage":{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion}}}\n\n`);
  }
  frames.push('data: [DONE]\n\n');
  return frames;
}

/** A function call the client must answer, from a Response's `output`. */
export interface ToolCall {
  callId: string;
  name: string;
  arguments: string;
}

/** The function call in a Response's output (the first, if several), or undefined when it has none. */
export function toolCallOf(response: unknown): ToolCall | undefined {
  const output = (response as Json | undefined)?.output;
  if (!Array.isArray(output)) return undefined;
  for (const item of output as Json[]) {
    if (item?.type === 'function_call' && typeof item.call_id === 'string') {
      return { callId: item.call_id, name: String(item.name ?? ''), arguments: typeof item.arguments === 'string' ? item.arguments : '' };
    }
  }
  return undefined;
}

/** The text of a Response's output messages, joined. */
export function outputTextOf(response: unknown): string {
  const output = (response as Json | undefined)?.output;
  if (!Array.isArray(output)) return '';
  let text = '';
  for (const item of output as Json[]) {
    if (item?.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const part of item.content as Json[]) if (part?.type === 'output_text' && typeof part.text === 'string') text += part.text;
  }
  return text;
}

/** The first piece of a turn's answer, whichever it is: a text delta, or a function call's arguments delta. */
export const FIRST_TOKEN_EVENTS: ReadonlySet<string> = new Set(['response.output_text.delta', 'response.function_call_arguments.delta']);

/** Events that end a turn: its Response (completed, or not), or an error before it began. */
export const TURN_END_EVENTS: ReadonlySet<string> = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);

/**
 * What turn `turn` (0-based) of a rollout of `calls` calls must have ended with: a call named `call_<turn>` before
 * the last turn, a text answer and no call at the last; a message saying what was wrong, or undefined.
 */
export function turnProblem(response: unknown, turn: number, calls: number): string | undefined {
  const status = (response as Json | undefined)?.status;
  if (status !== 'completed') return `turn ${turn + 1}: response ${String(status)}`;
  const call = toolCallOf(response);
  if (turn < calls) {
    if (!call) return `turn ${turn + 1}: no function call (text: ${JSON.stringify(outputTextOf(response).slice(0, 60))})`;
    if (call.callId !== callIdOf(turn)) return `turn ${turn + 1}: call ${call.callId}, expected ${callIdOf(turn)} (the upstream did not see the whole history)`;
    return undefined;
  }
  if (call) return `turn ${turn + 1}: a function call (${call.callId}) where the final answer was due`;
  if (outputTextOf(response) === '') return `turn ${turn + 1}: no text in the final answer`;
  return undefined;
}
