// Reading a Messages request as the fake needs it: the prompt that steers the answer, the token estimate, whether
// thinking is on, and the checks Anthropic makes before it answers (a string when the request is refused).
import { redactedDataValid, signatureValid, type Json } from './wire.js';

/** The API versions the fake speaks; `2026-10-21` is the one the SDK 1.x sends. */
export const API_VERSIONS = ['2023-06-01', '2026-10-21'] as const;
/** Sampling parameters that `2026-10-21` refuses (even at their defaults) and `2023-06-01` accepts. */
export const SAMPLING_PARAMS = ['temperature', 'top_p', 'top_k'] as const;

const blocksOf = (content: unknown): Json[] =>
  typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? content.filter((b): b is Json => typeof b === 'object' && b !== null) : [];

/** The text of a tool_result's content: a string, or its text blocks. */
export function toolResultText(block: Json): string {
  return blocksOf(block.content)
    .map((b) => (typeof b.text === 'string' ? b.text : ''))
    .join('');
}

/** The last user message: its text (text blocks and tool results, as a client tags them) and its tool results. */
export function lastUser(body: Json): { prompt: string; toolResults: string[] } {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== 'user') continue;
    const blocks = blocksOf(m.content);
    const toolResults = blocks.filter((b) => b.type === 'tool_result').map(toolResultText);
    const prompt = blocks.map((b) => (b.type === 'text' && typeof b.text === 'string' ? b.text : b.type === 'tool_result' ? toolResultText(b) : '')).join('');
    return { prompt, toolResults };
  }
  return { prompt: '', toolResults: [] };
}

/** All the text a block carries, for the token estimate and the conversation's identity. */
function blockText(b: Json): string {
  switch (b.type) {
    case 'text':
      return String(b.text ?? '');
    case 'thinking':
      return String(b.thinking ?? '');
    case 'redacted_thinking':
      return '';
    case 'tool_use':
      return `${String(b.id ?? '')} ${String(b.name ?? '')} ${JSON.stringify(b.input ?? {})}`;
    case 'tool_result':
      return `${String(b.tool_use_id ?? '')} ${toolResultText(b)}`;
    default:
      return JSON.stringify(b);
  }
}

/**
 * What identifies a conversation: roles and the text of each block. The same prompt gets the same ids, even when
 * a gateway re-serialises the request (reorders keys, adds nulls), so direct and relayed answers compare whole.
 */
export function conversationKey(body: Json): string {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  return messages.map((m) => `${String(m?.role)}:${blocksOf(m?.content).map(blockText).join('|')}`).join('\n');
}

/** Anthropic's input token count, estimated the same way for message_start and count_tokens: ~4 characters a token. */
export function inputTokensOf(body: Json): number {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  let chars = blocksOf(body.system).map(blockText).join('').length;
  for (const m of messages) chars += blocksOf(m?.content).map(blockText).join('').length;
  if (Array.isArray(body.tools)) chars += JSON.stringify(body.tools).length;
  return Math.ceil(chars / 4) + 3 * messages.length + (body.system === undefined ? 0 : 3) + 4;
}

/** Whether the request turned thinking on, and whether it asked for the thinking text to be left out. */
export function thinkingOf(body: Json): { on: boolean; omitted: boolean } {
  const t = body.thinking as Json | undefined;
  const on = t?.type === 'enabled' || t?.type === 'adaptive';
  return { on, omitted: on && t?.display === 'omitted' };
}

const THINKING_DOCS = 'Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking';

/** Why Anthropic would refuse this request with a 400 invalid_request_error, or null. */
export function invalidRequest(body: Json, version: string, path: '/v1/messages' | '/v1/messages/count_tokens'): string | null {
  if (typeof body.model !== 'string' || body.model === '') return body.model === undefined ? 'model: Field required' : 'model: Input should be a valid string';
  if (path === '/v1/messages') {
    if (body.max_tokens === undefined) return 'max_tokens: Field required';
    if (typeof body.max_tokens !== 'number' || !Number.isInteger(body.max_tokens)) return 'max_tokens: Input should be a valid integer';
    if (body.max_tokens < 1) return 'max_tokens: Input should be greater than or equal to 1';
  }
  if (body.messages === undefined) return 'messages: Field required';
  if (!Array.isArray(body.messages)) return 'messages: Input should be a valid list';
  if (body.messages.length === 0) return 'messages: at least one message is required';
  if (version === '2026-10-21') {
    for (const name of SAMPLING_PARAMS) if (body[name] !== undefined) return `${name}: Extra inputs are not permitted`;
  }
  const roles = version === '2026-10-21' ? ['user', 'assistant', 'system'] : ['user', 'assistant'];
  const messages = body.messages as unknown[];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Json | null;
    if (typeof m !== 'object' || m === null) return `messages.${i}: Input should be a valid dictionary`;
    if (!roles.includes(String(m.role))) return `messages.${i}.role: Input should be ${roles.map((r) => `'${r}'`).join(' or ')}`;
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) return `messages.${i}.content: Field required`;
    const blocks = blocksOf(m.content);
    for (let j = 0; j < blocks.length; j++) {
      const b = blocks[j]!;
      const at = `messages.${i}.content.${j}`;
      if (b.type === 'text' && typeof m.content !== 'string' && (typeof b.text !== 'string' || b.text === '')) return `${at}: text content blocks must be non-empty`;
      if (b.type === 'thinking') {
        if (b.signature === undefined) return `${at}.thinking.signature: Field required`;
        if (!signatureValid(String(b.thinking ?? ''), b.signature)) return `${at}: Invalid \`signature\` in \`thinking\` block`;
      }
      if (b.type === 'redacted_thinking' && !redactedDataValid(b.data)) return `${at}: Invalid \`data\` in \`redacted_thinking\` block`;
      if (version === '2026-10-21' && m.role === 'assistant' && b.type === 'document') return `${at}: \`document\` blocks are not permitted in \`assistant\` messages`;
      if (version === '2026-10-21' && m.role === 'user' && b.type === 'text' && Array.isArray(b.citations) && b.citations.length > 0) return `${at}.citations: Extra inputs are not permitted`;
    }
  }
  const thinking = body.thinking as Json | undefined;
  if (thinking?.type === 'enabled') {
    const budget = thinking.budget_tokens;
    if (typeof budget !== 'number' || !Number.isInteger(budget)) return 'thinking.enabled.budget_tokens: Field required';
    if (budget < 1024) return 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024';
    if (path === '/v1/messages' && (body.max_tokens as number) <= budget) return `\`max_tokens\` must be greater than \`thinking.budget_tokens\`. ${THINKING_DOCS}#max-tokens-and-context-window-size`;
  }
  if (thinkingOf(body).on) {
    if (body.temperature !== undefined && body.temperature !== 1) return `\`temperature\` may only be set to 1 when thinking is enabled. ${THINKING_DOCS}#feature-compatibility`;
    if (body.top_k !== undefined) return `\`top_k\` is not supported when thinking is enabled. ${THINKING_DOCS}#feature-compatibility`;
    const choice = (body.tool_choice as Json | undefined)?.type;
    if (choice === 'any' || choice === 'tool') return 'Thinking may not be enabled when tool_choice forces tool use.';
    // Anthropic's rule for a tool loop: the final assistant turn, the one whose tool_use is being answered, starts
    // with the thinking that led to it. This is what proves a gateway carried the block and its signature back.
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i] as Json;
      if (m.role !== 'assistant') continue;
      const blocks = blocksOf(m.content);
      const first = blocks[0];
      if (first && blocks.some((b) => b.type === 'tool_use') && first.type !== 'thinking' && first.type !== 'redacted_thinking') {
        return (
          `messages.${i}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${String(first.type)}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block ` +
          '(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. ' +
          THINKING_DOCS
        );
      }
      break;
    }
  }
  return null;
}
