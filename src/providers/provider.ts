/** A text part of a message; other part types (images, audio) pass through to upstreams untouched. */
export interface ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function';
  content?: string | ContentPart[] | null;
  name?: string;
  [key: string]: unknown;
}

/** What a provider is asked to do. `body` is the client's request as received, so unknown fields pass through. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  maxTokens?: number;
  body: Record<string, unknown>;
  /**
   * Headers this request asks to send upstream (Jarvis's request id, the caller's trace context). A provider
   * forwards only those it allows; the client's own headers, its Authorization above all, are never here.
   */
  headers?: Record<string, string>;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'function_call' | (string & {});

/**
 * One step of a model's answer. `text` is the hot path; `delta` carries anything else an upstream puts in a
 * chunk's delta (tool calls, reasoning text) so Jarvis relays it without knowing its shape.
 */
export type Delta =
  | { type: 'text'; text: string }
  | { type: 'delta'; delta: Record<string, unknown> }
  | { type: 'finish'; reason: FinishReason }
  | { type: 'usage'; usage: Usage };

export interface ModelInfo {
  id: string;
  owned_by: string;
  description?: string;
}

export interface Provider {
  readonly id: string;
  models(): ModelInfo[];
  /**
   * Streams the answer as batches of deltas, each what one upstream read carried: one token when paced, dozens
   * in a flood, where one await per token would cost more than relaying it. Errors before the first delta are
   * JarvisErrors with the HTTP status the client should get; aborting `signal` ends the iteration promptly with
   * `signal.reason` and releases the upstream request.
   */
  stream(request: ChatRequest, opts: { signal: AbortSignal }): AsyncIterable<Delta[]>;
  /** Resolves when the provider can serve; rejects with a reason when it cannot. */
  ready(opts: { signal: AbortSignal }): Promise<void>;
  close?(): Promise<void>;
}

/** The prompt as plain text: what the simulator and token estimates read. */
export function promptText(messages: ChatMessage[]): string {
  let out = '';
  for (const m of messages) {
    if (typeof m.content === 'string') out += m.content + '\n';
    else if (Array.isArray(m.content)) for (const p of m.content) if (typeof p.text === 'string') out += p.text + '\n';
  }
  return out;
}

export function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role === 'user') return promptText([m]).trim();
  }
  return '';
}
