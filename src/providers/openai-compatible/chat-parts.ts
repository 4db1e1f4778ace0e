import { isObject, type Obj } from '../../json.js';
import type { ChatChunk, Delta, Part, TokenUsage } from '../provider.js';

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Chat Completions usage in the neutral vocabulary (prompt_tokens already counts the cached ones). */
export function chatUsage(u: Obj): TokenUsage {
  const prompt = isObject(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
  const completion = isObject(u.completion_tokens_details) ? u.completion_tokens_details : {};
  const out: TokenUsage = { input: num(u.prompt_tokens) ?? 0, output: num(u.completion_tokens) ?? 0 };
  const cached = num(prompt.cached_tokens);
  if (cached) out.cacheRead = cached;
  const written = num(prompt.cache_creation_tokens) ?? num(u.cache_creation_input_tokens);
  if (written) out.cacheWrite = written;
  const reasoning = num(completion.reasoning_tokens);
  if (reasoning) out.reasoning = reasoning;
  return out;
}

/**
 * A chat chunk's choice 0 as parts, for an encoder of another wire. Reasoning under either name servers use
 * (reasoning_content, reasoning); `thinking_blocks` (the field Jarvis and LiteLLM carry Anthropic's signed
 * thinking in) as their signatures, so a signature survives a chat hop.
 */
export function chatParts(d: Delta): Part[] {
  const chunk: ChatChunk = d.chunk ?? (JSON.parse(d.data) as ChatChunk);
  const out: Part[] = [];
  if (Array.isArray(chunk.choices)) {
    for (const choice of chunk.choices as unknown[]) {
      if (!isObject(choice) || (choice.index ?? 0) !== 0) continue;
      const delta = isObject(choice.delta) ? choice.delta : {};
      if (typeof delta.role === 'string') out.push({ type: 'start', id: typeof chunk.id === 'string' ? chunk.id : undefined, model: typeof chunk.model === 'string' ? chunk.model : undefined });
      const reasoning = typeof delta.reasoning_content === 'string' ? delta.reasoning_content : typeof delta.reasoning === 'string' ? delta.reasoning : undefined;
      if (reasoning) out.push({ type: 'reasoning', text: reasoning });
      if (Array.isArray(delta.thinking_blocks)) {
        for (const b of delta.thinking_blocks as unknown[]) {
          if (!isObject(b)) continue;
          if (typeof b.signature === 'string') out.push({ type: 'reasoning_signature', signature: b.signature });
          else if (b.type === 'redacted_thinking' && typeof b.data === 'string') out.push({ type: 'reasoning_redacted', data: b.data });
        }
      }
      if (typeof delta.content === 'string' && delta.content !== '') out.push({ type: 'text', text: delta.content });
      if (typeof delta.refusal === 'string' && delta.refusal !== '') out.push({ type: 'refusal', text: delta.refusal });
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls as unknown[]) {
          if (!isObject(call)) continue;
          const fn = isObject(call.function) ? call.function : {};
          out.push({
            type: 'tool_call',
            index: typeof call.index === 'number' ? call.index : 0,
            id: typeof call.id === 'string' ? call.id : undefined,
            name: typeof fn.name === 'string' ? fn.name : undefined,
            arguments: typeof fn.arguments === 'string' ? fn.arguments : '',
          });
        }
      }
      if (typeof choice.finish_reason === 'string') out.push({ type: 'finish', reason: choice.finish_reason, native: choice.finish_reason });
    }
  }
  if (isObject(chunk.usage)) out.push({ type: 'usage', usage: chatUsage(chunk.usage) });
  return out;
}
