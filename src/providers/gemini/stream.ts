import { randomBytes } from 'node:crypto';
import type { EventSourceMessage } from 'eventsource-parser';
import { JarvisError } from '../../errors.js';
import { isObject, type Obj } from '../../json.js';
import { parseObject, type EventDecoder, type ParseState } from '../openai-compatible/sse-deltas.js';
import { JSON_STRING, unquote } from '../openai-compatible/token-chunk.js';
import type { Delta, Finish, Part, TokenUsage } from '../provider.js';
import { GEMINI_SIGNATURE_PREFIX } from '../signed-thinking.js';
import { reportedGeminiError } from './errors.js';

/**
 * Gemini's finish reasons in the one finish vocabulary (docs/providers.md). STOP after a function call is
 * tool_calls (Gemini says STOP either way); every block is content_filter; MALFORMED_FUNCTION_CALL and its kin
 * are not a finish but an error (MALFORMED_CALL).
 */
const FINISH_OF_REASON: Record<string, Finish> = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  LANGUAGE: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
  IMAGE_PROHIBITED_CONTENT: 'content_filter',
  IMAGE_RECITATION: 'content_filter',
  OTHER: 'content_filter',
};

/** The finish reasons that say the model's function call could not be used: the answer failed. */
const MALFORMED_CALL = new Set(['MALFORMED_FUNCTION_CALL', 'UNEXPECTED_TOOL_CALL', 'TOO_MANY_TOOL_CALLS', 'MISSING_THOUGHT_SIGNATURE']);

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Gemini's usageMetadata in the neutral vocabulary. Its candidates count leaves the thoughts out; OpenAI's
 * completion tokens include reasoning, so output is both. promptTokenCount includes the cached content.
 */
function geminiUsage(u: Obj): TokenUsage {
  const thoughts = num(u.thoughtsTokenCount);
  const cached = num(u.cachedContentTokenCount);
  const out: TokenUsage = { input: num(u.promptTokenCount) + num(u.toolUsePromptTokenCount), output: num(u.candidatesTokenCount) + thoughts };
  if (cached) out.cacheRead = cached;
  if (thoughts) out.reasoning = thoughts;
  return out;
}

/**
 * A chunk whose one candidate holds one plain text part and nothing else (no finish reason, no thought, no
 * signature), as Gemini writes it: recognised by its head, up to the candidate's end, and its text taken without
 * parsing. What follows the candidates (usage so far, the model's version, the response id) matters only on the
 * chunks that are parsed anyway: the first, and the one with the finish reason. Nearly every chunk is one of these.
 */
const TEXT_CHUNK = new RegExp(`^\\{"candidates": ?\\[\\{"content": ?\\{"parts": ?\\[\\{"text": ?(${JSON_STRING})\\}\\], ?"role": ?"model"\\}, ?"index": ?0\\}\\](?:,|\\}$)`);

export function textChunkText(data: string): string | undefined {
  const match = TEXT_CHUNK.exec(data);
  return match ? unquote(match[1]!) : undefined;
}

/** A tool call id for a function call Gemini gave none: OpenAI's shape, unique enough to key the signature memory. */
function toolCallId(): string {
  return `call_${randomBytes(18).toString('base64url')}`;
}

/**
 * One Gemini stream's chunks (each a GenerateContentResponse) as deltas, parts decoded here since a chunk holds
 * several at once and a function call arrives whole. A function call's thought signature becomes a
 * reasoning_signature part just before its call (and `onSigned` remembers it by the call's id), so each client
 * API carries it as it carries Anthropic's. Gemini has no end event: a stream that ends after a finish reason
 * is whole, one that ends before it was cut short.
 */
export function geminiEvents(onSigned?: (toolCallId: string, signature: string) => void): EventDecoder {
  let tools = 0;
  let started = false;
  let finished = false;
  let usage: TokenUsage | undefined;

  const onEvent = (event: EventSourceMessage, s: ParseState): Delta | undefined => {
    // The token path: no parse, no parts (partsOf makes a text part of `text` if another wire asks).
    if (started) {
      const fast = textChunkText(event.data);
      if (fast !== undefined) return { wire: 'gemini', data: event.data, chunk: undefined, text: fast, finish: undefined };
    }
    const e = parseObject(event.data, s);
    if (!e) return undefined;
    if (isObject(e.error)) {
      s.failure = reportedGeminiError(event.data, e.error);
      return undefined;
    }
    const parts: Part[] = [];
    let text = '';
    if (!started) {
      started = true;
      parts.push({ type: 'start', model: typeof e.modelVersion === 'string' ? e.modelVersion : undefined });
    }
    const candidate = Array.isArray(e.candidates) ? e.candidates.find((c) => isObject(c) && num(c.index) === 0) : undefined;
    const content = isObject(candidate) && isObject(candidate.content) ? candidate.content : {};
    for (const p of Array.isArray(content.parts) ? content.parts : []) {
      if (!isObject(p)) continue;
      if (isObject(p.functionCall)) {
        const call = p.functionCall;
        const id = typeof call.id === 'string' && call.id !== '' ? call.id : toolCallId();
        if (typeof p.thoughtSignature === 'string' && p.thoughtSignature !== '') {
          parts.push({ type: 'reasoning_signature', signature: GEMINI_SIGNATURE_PREFIX + p.thoughtSignature });
          onSigned?.(id, p.thoughtSignature);
        }
        parts.push({ type: 'tool_call', index: tools++, id, name: String(call.name ?? ''), arguments: JSON.stringify(isObject(call.args) ? call.args : {}) });
      } else if (typeof p.text === 'string' && p.text !== '') {
        if (p.thought === true) parts.push({ type: 'reasoning', text: p.text });
        else {
          parts.push({ type: 'text', text: p.text });
          text += p.text;
        }
      }
    }
    if (isObject(e.usageMetadata)) usage = geminiUsage(e.usageMetadata);
    let finish: Finish | undefined;
    const reason = isObject(candidate) && typeof candidate.finishReason === 'string' ? candidate.finishReason : undefined;
    const blocked = isObject(e.promptFeedback) && typeof e.promptFeedback.blockReason === 'string' ? e.promptFeedback.blockReason : undefined;
    if (reason !== undefined && MALFORMED_CALL.has(reason)) {
      s.failure = new JarvisError('JARVIS_ERR_UPSTREAM_REPORTED', `The model made a function call that could not be used (${reason}${isObject(candidate) && typeof candidate.finishMessage === 'string' ? `: ${candidate.finishMessage}` : ''})`, {
        status: 502,
        type: 'api_error',
        code: 'malformed_function_call',
      });
      return undefined;
    }
    if (reason !== undefined && reason !== 'FINISH_REASON_UNSPECIFIED') {
      finish = reason === 'STOP' && tools > 0 ? 'tool_calls' : (FINISH_OF_REASON[reason] ?? 'content_filter');
    } else if (blocked !== undefined) finish = 'content_filter';
    if (finish !== undefined) {
      finished = true;
      if (usage) parts.push({ type: 'usage', usage });
      parts.push({ type: 'finish', reason: finish, native: reason ?? blocked ?? '' });
    } else if (finished && usage) parts.push({ type: 'usage', usage });
    return { wire: 'gemini', data: event.data, chunk: e, text, finish, parts };
  };
  return {
    onEvent,
    cutShort: 'upstream closed the stream before a finish reason',
    ended: () => finished,
  };
}
