import type { EventSourceMessage } from 'eventsource-parser';
import { isObject, type Obj } from '../../json.js';
import { parseObject, type EventDecoder, type ParseState } from '../openai-compatible/sse-deltas.js';
import { JSON_STRING, unquote } from '../openai-compatible/token-chunk.js';
import type { Delta, Finish, Part, TokenUsage } from '../provider.js';
import { reportedAnthropicError } from './errors.js';

/** Anthropic's stop reasons in the one finish vocabulary (docs/providers.md). */
export const FINISH_OF_STOP_REASON: Record<string, Finish> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Anthropic's usage (input_tokens excludes the cache) in the neutral vocabulary (input counts all of it; its thinking tokens are the reasoning). */
export function anthropicUsage(u: Obj, into?: TokenUsage): TokenUsage {
  const read = u.cache_read_input_tokens !== undefined ? num(u.cache_read_input_tokens) : (into?.cacheRead ?? 0);
  const write = u.cache_creation_input_tokens !== undefined ? num(u.cache_creation_input_tokens) : (into?.cacheWrite ?? 0);
  const fresh = u.input_tokens !== undefined ? num(u.input_tokens) : (into ? into.input - (into.cacheRead ?? 0) - (into.cacheWrite ?? 0) : 0);
  const out: TokenUsage = { input: fresh + read + write, output: u.output_tokens !== undefined ? num(u.output_tokens) : (into?.output ?? 0) };
  const details = isObject(u.output_tokens_details) ? u.output_tokens_details : undefined;
  const reasoning = details?.thinking_tokens !== undefined ? num(details.thinking_tokens) : (into?.reasoning ?? 0);
  if (read) out.cacheRead = read;
  if (write) out.cacheWrite = write;
  if (reasoning) out.reasoning = reasoning;
  return out;
}

/**
 * A text delta in exactly the compact shape Anthropic sends one in: recognised with one anchored expression (JSON's
 * own grammar, so a match is valid JSON with that text and nothing else), its text taken without parsing. Nearly
 * every event of an answer is one; a Messages client gets it as it came and no one else needs more than its text.
 */
const TEXT_DELTA = new RegExp(`^\\{"type":"content_block_delta","index":\\d+,"delta":\\{"type":"text_delta","text":(${JSON_STRING})\\}\\}$`);

export function textDeltaText(data: string): string | undefined {
  const match = TEXT_DELTA.exec(data);
  return match ? unquote(match[1]!) : undefined;
}

/**
 * One Anthropic Messages stream's events as deltas: each keeps its data as sent (a Messages client gets it byte
 * for byte) with its parts decoded here, since a tool call's fragments name only their content block and the
 * block's kind was said at its start. `ping` is a delta with no parts; `message_stop` ends the stream; an
 * `error` event fails it with the same meaning in every client's format (errors.ts).
 */
export function anthropicEvents(onSigned?: (toolCallId: string, blocks: Obj[]) => void): EventDecoder {
  /** Content blocks by index: what kind each is, and a tool_use block's tool call index. */
  const blocks = new Map<number, { kind: string; tool: number }>();
  let tools = 0;
  let usage: TokenUsage | undefined;
  /** The signed thinking of this answer so far (for onSigned), and the text of the block being signed. */
  let signed: Obj[] = [];
  let thinking = '';

  const onEvent = (event: EventSourceMessage, s: ParseState): Delta | undefined => {
    // The token path: no parse, no parts (partsOf makes a text part of `text` if another wire asks).
    const fast = textDeltaText(event.data);
    if (fast !== undefined) return { wire: 'anthropic.messages', event: 'content_block_delta', data: event.data, chunk: undefined, text: fast, finish: undefined };
    const e = parseObject(event.data, s);
    if (!e) return undefined;
    const type = typeof e.type === 'string' ? e.type : event.event;
    const delta = (parts: Part[], text = '', finish?: Finish): Delta => ({ wire: 'anthropic.messages', event: type, data: event.data, chunk: e as Obj, text, finish, parts });
    switch (type) {
      case 'content_block_delta': {
        const d = isObject(e.delta) ? e.delta : {};
        const index = num(e.index);
        switch (d.type) {
          case 'text_delta': {
            const text = typeof d.text === 'string' ? d.text : '';
            return delta(text === '' ? [] : [{ type: 'text', text }], text);
          }
          case 'thinking_delta':
            if (typeof d.thinking !== 'string' || d.thinking === '') return delta([]);
            if (onSigned) thinking += d.thinking;
            return delta([{ type: 'reasoning', text: d.thinking }]);
          case 'signature_delta':
            if (typeof d.signature !== 'string') return delta([]);
            if (onSigned) signed.push({ type: 'thinking', thinking, signature: d.signature });
            thinking = '';
            return delta([{ type: 'reasoning_signature', signature: d.signature }]);
          case 'input_json_delta': {
            const block = blocks.get(index);
            if (!block || block.kind !== 'tool_use') return delta([]);
            return delta([{ type: 'tool_call', index: block.tool, arguments: typeof d.partial_json === 'string' ? d.partial_json : '' }]);
          }
          default:
            // citations_delta and whatever comes next: relayed to Messages clients, nothing to translate yet.
            return delta([]);
        }
      }
      case 'content_block_start': {
        const b = isObject(e.content_block) ? e.content_block : {};
        const index = num(e.index);
        const kind = String(b.type);
        if (kind === 'tool_use' || kind === 'server_tool_use') {
          blocks.set(index, { kind: 'tool_use', tool: tools++ });
          if (onSigned && signed.length > 0 && typeof b.id === 'string') onSigned(b.id, signed);
          // A tool_use block may start with its input whole (a non-streamed replay); usually it is {}.
          const input = isObject(b.input) && Object.keys(b.input).length > 0 ? JSON.stringify(b.input) : '';
          return delta([{ type: 'tool_call', index: tools - 1, id: String(b.id ?? ''), name: String(b.name ?? ''), arguments: input }]);
        }
        blocks.set(index, { kind, tool: -1 });
        if (kind === 'text' && typeof b.text === 'string' && b.text !== '') return delta([{ type: 'text', text: b.text }], b.text);
        if (kind === 'thinking' && typeof b.thinking === 'string' && b.thinking !== '') {
          if (onSigned) thinking += b.thinking;
          return delta([{ type: 'reasoning', text: b.thinking }]);
        }
        if (kind === 'redacted_thinking' && typeof b.data === 'string') {
          if (onSigned) signed.push({ type: 'redacted_thinking', data: b.data });
          return delta([{ type: 'reasoning_redacted', data: b.data }]);
        }
        return delta([]);
      }
      case 'content_block_stop':
      case 'ping':
        return delta([]);
      case 'message_start': {
        signed = [];
        const m = isObject(e.message) ? e.message : {};
        if (isObject(m.usage)) usage = anthropicUsage(m.usage);
        return delta([{ type: 'start', id: typeof m.id === 'string' ? m.id : undefined, model: typeof m.model === 'string' ? m.model : undefined, usage }]);
      }
      case 'message_delta': {
        const d = isObject(e.delta) ? e.delta : {};
        const parts: Part[] = [];
        let finish: Finish | undefined;
        if (typeof d.stop_reason === 'string') {
          finish = FINISH_OF_STOP_REASON[d.stop_reason] ?? d.stop_reason;
          parts.push({ type: 'finish', reason: finish, native: d.stop_reason, stopSequence: typeof d.stop_sequence === 'string' ? d.stop_sequence : null });
        }
        if (isObject(e.usage)) {
          usage = anthropicUsage(e.usage, usage);
          parts.push({ type: 'usage', usage });
        }
        return delta(parts, '', finish);
      }
      case 'message_stop':
        s.done = true;
        return delta([]);
      case 'error':
        s.failure = reportedAnthropicError(event.data, e);
        return undefined;
      default:
        // An event type Anthropic adds later: a Messages client gets it; others have nothing to translate.
        return delta([]);
    }
  };
  return { onEvent, cutShort: 'upstream closed the stream before message_stop' };
}
