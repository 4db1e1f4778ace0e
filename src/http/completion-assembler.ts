import type { ChatChunk } from '../providers/provider.js';
import { isObject, type Obj } from '../json.js';

/** Delta keys whose fragments make one text: the answer, its refusal, and reasoning under either name servers use. */
const TEXT_KEYS = new Set(['content', 'refusal', 'reasoning_content', 'reasoning']);

/**
 * One member of a delta added to what came before: strings are fragments of one text, arrays parts of one list,
 * objects merged the same way; anything else replaces (a null never erases a value).
 */
function accumulate(target: Obj, key: string, value: unknown): void {
  const prev = target[key];
  if (value === null || value === undefined) {
    if (prev === undefined) target[key] = null;
  } else if (typeof value === 'string' && typeof prev === 'string') {
    target[key] = prev + value;
  } else if (Array.isArray(value)) {
    target[key] = Array.isArray(prev) ? [...prev, ...value] : [...value];
  } else if (isObject(value)) {
    const into: Obj = isObject(prev) ? prev : {};
    for (const k in value) accumulate(into, k, value[k]);
    target[key] = into;
  } else {
    target[key] = value;
  }
}

interface ChoiceState {
  index: number;
  message: Obj;
  toolCalls: Obj[];
  logprobs: Obj | null;
  finish: string | null;
  rest: Obj;
}

/**
 * A stream's chunks assembled into the `chat.completion` a non-streaming client gets, the way openai-node's
 * ChatCompletionStream accumulates them: per choice index, text fragments joined, tool calls by index with their
 * arguments joined, logprobs concatenated, every other delta key carried along; the top-level members (model,
 * system_fingerprint, service_tier, usage...) as the upstream last sent them. The message has OpenAI's shape:
 * `content` and `refusal` are null when there were none, `annotations` is [] when there were none.
 */
export class CompletionAssembler {
  readonly #top: Obj = {};
  readonly #choices = new Map<number, ChoiceState>();

  add(chunk: ChatChunk): void {
    for (const key in chunk) {
      if (key === 'choices' || key === 'object' || key === 'obfuscation') continue;
      const value = chunk[key];
      if (value !== null || this.#top[key] === undefined) this.#top[key] = value;
    }
    if (!Array.isArray(chunk.choices)) return;
    for (const c of chunk.choices as unknown[]) if (isObject(c)) this.#choice(c);
  }

  #choice(c: Obj): void {
    const index = typeof c.index === 'number' && Number.isInteger(c.index) ? c.index : 0;
    let st = this.#choices.get(index);
    if (!st) {
      st = { index, message: {}, toolCalls: [], logprobs: null, finish: null, rest: {} };
      this.#choices.set(index, st);
    }
    for (const key in c) {
      const value = c[key];
      switch (key) {
        case 'index':
          break;
        case 'finish_reason':
          if (typeof value === 'string') st.finish = value;
          break;
        case 'logprobs':
          if (isObject(value)) {
            st.logprobs ??= {};
            for (const k in value) accumulate(st.logprobs, k, value[k]);
          }
          break;
        case 'delta':
          if (isObject(value)) this.#delta(st, value);
          break;
        default:
          if (value !== null || st.rest[key] === undefined) st.rest[key] = value;
      }
    }
  }

  #delta(st: ChoiceState, delta: Obj): void {
    for (const key in delta) {
      const value = delta[key];
      if (key === 'tool_calls') {
        if (Array.isArray(value)) for (const call of value as unknown[]) if (isObject(call)) this.#toolCall(st, call);
      } else if (key === 'role') {
        if (typeof value === 'string') st.message.role = value;
      } else if (TEXT_KEYS.has(key) && value === '') {
        // An empty first fragment ("content": "") is no text yet: content stays null for a tool call's answer.
      } else {
        accumulate(st.message, key, value);
      }
    }
  }

  #toolCall(st: ChoiceState, call: Obj): void {
    const index = typeof call.index === 'number' && Number.isInteger(call.index) ? call.index : st.toolCalls.length;
    const into = (st.toolCalls[index] ??= {});
    for (const key in call) {
      const value = call[key];
      if (key === 'index') continue;
      if (key === 'function' && isObject(value)) {
        const fn = (into.function ??= { name: '', arguments: '' }) as Obj;
        for (const k in value) {
          if (k === 'arguments' && typeof value[k] === 'string') fn.arguments = String(fn.arguments ?? '') + value[k];
          else if (value[k] !== null && value[k] !== undefined) fn[k] = value[k];
        }
      } else if (value !== null && value !== undefined) {
        into[key] = value;
      }
    }
  }

  /**
   * The completion so far. `unfinished` is the finish_reason of every choice that has none (a cancelled stream);
   * `fallback` names an answer that never sent a chunk.
   */
  completion(fallback: { id: string; created: number; model: string }, unfinished?: string): Obj {
    const { usage, id, created, model, ...rest } = this.#top;
    if (unfinished && !this.#choices.has(0)) this.#choices.set(0, { index: 0, message: {}, toolCalls: [], logprobs: null, finish: null, rest: {} });
    const choices = [...this.#choices.values()]
      .sort((a, b) => a.index - b.index)
      .map((st) => {
        const { role, content, refusal, annotations, ...others } = st.message;
        const message: Obj = { role: role ?? 'assistant', content: content ?? null, refusal: refusal ?? null, annotations: annotations ?? [], ...others };
        const calls = st.toolCalls.filter(Boolean);
        if (calls.length > 0) message.tool_calls = calls;
        return { ...st.rest, index: st.index, message, logprobs: st.logprobs, finish_reason: st.finish ?? unfinished ?? null };
      });
    return {
      ...rest,
      id: id ?? fallback.id,
      object: 'chat.completion',
      created: created ?? fallback.created,
      model: model ?? fallback.model,
      choices,
      ...(isObject(usage) ? { usage } : {}),
    };
  }
}
