// The answer to one Messages request, chosen by the last user message as the OpenAI fake chooses its own:
// `scenario:<name>` picks one (text when none), `tokens:<n>` sets a length, `delay:<ms>` paces the events (read by
// the server). A request with tools gets a tool call; one whose last user message holds tool results gets an
// answer quoting them. With thinking on, an answer starts with a signed thinking block, as Claude's do.
//
// An answer is its content blocks, each with the pieces its deltas carry. The stream writes the pieces one event
// each; the Message that `stream: false` returns is the same pieces joined, so the two agree by construction.
import { knob, scenarioIn } from '../knobs.js';
import { conversationKey, inputTokensOf, lastUser, thinkingOf } from './request.js';
import { DELTA_USAGE, START_OUTPUT_TOKENS, STREAM_ERROR, USAGE, messageId, redactedDataOf, signatureOf, sse, toolUseId, type Json } from './wire.js';

export type Block =
  | { type: 'text'; pieces: string[] }
  | { type: 'thinking'; pieces: string[]; signature: string }
  | { type: 'redacted_thinking'; data: string }
  /** `pieces` are the fragments of the input's JSON, as input_json_delta carries them. */
  | { type: 'tool_use'; id: string; name: string; pieces: string[] };

export interface Answer {
  scenario: string;
  blocks: Block[];
  stopReason: 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';
  stopSequence: string | null;
  stopDetails: Json | null;
  /** Overrides the count of generated pieces (max-tokens reports the whole budget spent). */
  outputTokens?: number;
  /** The stream fails with STREAM_ERROR after this many text deltas (scenario `error-mid`). */
  errorAfterDeltas?: number;
}

/** The words of the default answer. */
export const TEXT = ['The answer', ' is', ' 42', '.'];
/** What the refusal scenario says before it stops, and the details it stops with. */
export const REFUSAL_TEXT = ["I can't", ' help with that.'];
export const REFUSAL_DETAILS = { type: 'refusal', category: 'general_harms', explanation: 'The request could be related to an area that was determined as harmful.' };
/** The arguments the tool calls are given, in order. */
export const TOOL_ARGS = ['{"location": "Paris"}', '{"location": "Tokyo", "unit": "c"}'];
export const THINKING = ['The user', ' asks for', ' the answer;', ' it is 42.'];
export const THINKING_TOOL = ['The user', ' wants the weather.', ' I should call', ' the tool.'];
export const STOP_SEQUENCE = '\n\nHuman:';


/** The scenario a request asks for: named in its prompt, else what its shape implies. */
export function scenarioOf(body: Json): string {
  const { prompt, toolResults } = lastUser(body);
  const named = scenarioIn(prompt);
  if (named) return named;
  if (toolResults.length > 0) return 'tool-result';
  const tools = Array.isArray(body.tools) ? body.tools : [];
  if (tools.length > 0 && (body.tool_choice as Json | undefined)?.type !== 'none') return 'tool';
  return 'text';
}

function toolName(body: Json, i: number): string {
  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  const name = (tools[i] ?? tools[0])?.name;
  return typeof name === 'string' ? name : 'get_weather';
}

/** A JSON text cut where a model's deltas cut it: an empty first fragment, then uneven pieces. */
const jsonPieces = (s: string) => ['', s.slice(0, 1), s.slice(1, 13), s.slice(13)].filter((p, i) => i === 0 || p !== '');
const counted = (n: number) => Array.from({ length: n }, (_, i) => `t${i} `);

/** Builds the answer to a Messages request: its blocks and how it stops. */
export function answerFor(body: Json): Answer {
  const scenario = scenarioOf(body);
  const { prompt, toolResults } = lastUser(body);
  const seed = conversationKey(body);
  const thinking = thinkingOf(body);
  const base = { scenario, stopReason: 'end_turn' as const, stopSequence: null, stopDetails: null };
  const text = (pieces: string[]): Block => ({ type: 'text', pieces });
  const toolUse = (i: number): Block => ({ type: 'tool_use', id: toolUseId(seed, i), name: toolName(body, i), pieces: jsonPieces(TOOL_ARGS[i]!) });
  // Claude with thinking on thinks first, in every fresh turn; a turn that answers tool results continues the
  // turn that thought already.
  const think = (words: string[]): Block[] =>
    thinking.on ? [{ type: 'thinking', pieces: thinking.omitted ? [] : words, signature: signatureOf(thinking.omitted ? '' : words.join(''), seed) }] : [];

  switch (scenario) {
    case 'tool-result':
      return { ...base, blocks: [text(['The tool', ' says: ', toolResults.join(', ').trim() || 'nothing', '.'])] };
    case 'tool':
    case 'thinking-tool':
      return { ...base, stopReason: 'tool_use', blocks: [...think(THINKING_TOOL), toolUse(0)] };
    case 'tools-2':
      return { ...base, stopReason: 'tool_use', blocks: [...think(THINKING_TOOL), toolUse(0), toolUse(1)] };
    case 'thinking':
      return { ...base, blocks: [...think(THINKING), text(TEXT)] };
    case 'thinking-redacted':
      return { ...base, blocks: thinking.on ? [{ type: 'redacted_thinking', data: redactedDataOf(seed) }, ...think(THINKING), text(TEXT)] : [text(TEXT)] };
    case 'max-tokens':
      return { ...base, stopReason: 'max_tokens', outputTokens: body.max_tokens as number, blocks: [...think(THINKING), text(counted(Math.min(8, body.max_tokens as number)))] };
    case 'stop-sequence': {
      const stops = Array.isArray(body.stop_sequences) ? body.stop_sequences : [];
      return { ...base, stopReason: 'stop_sequence', stopSequence: typeof stops[0] === 'string' ? stops[0] : STOP_SEQUENCE, blocks: [...think(THINKING), text(['The answer', ' is'])] };
    }
    case 'refusal':
      return { ...base, stopReason: 'refusal', stopDetails: REFUSAL_DETAILS, blocks: [...think(THINKING), text(REFUSAL_TEXT)] };
    case 'error-mid':
      return { ...base, errorAfterDeltas: 3, blocks: [...think(THINKING), text(['Hello', ' there', ' and', ' more'])] };
    case 'long':
      return { ...base, blocks: [...think(THINKING), text(counted(knob(prompt, 'tokens', 40)))] };
    default:
      return { ...base, blocks: [...think(THINKING), text(knob(prompt, 'tokens') !== undefined ? counted(knob(prompt, 'tokens', 4)) : TEXT)] };
  }
}

/** A block as the final Message holds it. */
function finished(b: Block): Json {
  switch (b.type) {
    case 'text':
      return { type: 'text', text: b.pieces.join('') };
    case 'thinking':
      return { type: 'thinking', thinking: b.pieces.join(''), signature: b.signature };
    case 'redacted_thinking':
      return { type: 'redacted_thinking', data: b.data };
    case 'tool_use':
      return { type: 'tool_use', id: b.id, name: b.name, input: JSON.parse(b.pieces.join('')) as unknown };
  }
}

/** A block as content_block_start announces it: empty. */
function started(b: Block): Json {
  switch (b.type) {
    case 'text':
      return { type: 'text', text: '' };
    case 'thinking':
      return { type: 'thinking', thinking: '', signature: '' };
    case 'redacted_thinking':
      return { type: 'redacted_thinking', data: b.data };
    case 'tool_use':
      return { type: 'tool_use', id: b.id, name: b.name, input: {} };
  }
}

function deltas(b: Block): Json[] {
  switch (b.type) {
    case 'text':
      return b.pieces.map((text) => ({ type: 'text_delta', text }));
    case 'thinking':
      return [...b.pieces.map((thinking) => ({ type: 'thinking_delta', thinking })), { type: 'signature_delta', signature: b.signature }];
    case 'redacted_thinking':
      return [];
    case 'tool_use':
      return b.pieces.map((partial_json) => ({ type: 'input_json_delta', partial_json }));
  }
}

const piecesOf = (b: Block) => (b.type === 'redacted_thinking' ? 1 : b.pieces.length);

/** The answer as Anthropic sends it: the Message (`stream: false`) and the events that stream it. */
export function render(body: Json, answer: Answer): { message: Json; events: Json[]; failed: boolean } {
  const input = inputTokensOf(body);
  const thinkingTokens = answer.blocks.filter((b) => b.type !== 'text' && b.type !== 'tool_use').reduce((n, b) => n + piecesOf(b), 0);
  const output = answer.outputTokens ?? Math.max(1, answer.blocks.reduce((n, b) => n + piecesOf(b), 0));
  const head = { id: messageId(conversationKey(body)), type: 'message', role: 'assistant', model: String(body.model) };
  const message = {
    ...head,
    content: answer.blocks.map(finished),
    stop_reason: answer.stopReason,
    stop_sequence: answer.stopSequence,
    stop_details: answer.stopDetails,
    container: null,
    usage: USAGE(input, output, thinkingTokens),
  };
  const events: Json[] = [
    { type: 'message_start', message: { ...head, content: [], stop_reason: null, stop_sequence: null, stop_details: null, container: null, usage: USAGE(input, START_OUTPUT_TOKENS) } },
  ];
  let textDeltas = 0;
  for (const [index, b] of answer.blocks.entries()) {
    events.push({ type: 'content_block_start', index, content_block: started(b) });
    if (index === 0) events.push({ type: 'ping' });
    for (const delta of deltas(b)) {
      if (answer.errorAfterDeltas !== undefined && delta.type === 'text_delta' && textDeltas++ === answer.errorAfterDeltas) {
        events.push(STREAM_ERROR);
        return { message, events, failed: true };
      }
      events.push({ type: 'content_block_delta', index, delta });
    }
    events.push({ type: 'content_block_stop', index });
  }
  events.push({
    type: 'message_delta',
    delta: { stop_reason: answer.stopReason, stop_sequence: answer.stopSequence, stop_details: answer.stopDetails, container: null },
    usage: DELTA_USAGE(input, output, thinkingTokens),
  });
  events.push({ type: 'message_stop' });
  return { message, events, failed: false };
}

/** The events as server-sent events. */
export const framesOf = (events: Json[]) => events.map((e) => sse(e as { type: string }));
