import type { AttemptListener } from '../streams/attempts.js';
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
  /** The `id` and `created` of an answer Jarvis generates itself (the simulator); an upstream's answer keeps its own. */
  completionId: string;
  created: number;
  /** False when the client asked not to be hedged (`X-Jarvis-Hedge: off`): a route then tries one target at a time. */
  hedge?: boolean;
  /**
   * The client's request in its own wire, when that is not Chat Completions: a provider that speaks that wire
   * sends it (model aside) instead of encoding `body`, so nothing is lost in translation.
   */
  native?: { wire: Wire; body: Record<string, unknown>; headers?: Record<string, string> } | undefined;
  /**
   * The client API's estimate of the turn's input tokens, where it can make a better one than the text alone (the
   * Messages API counts tools and tool calls too): what Jarvis reports before, or instead of, the upstream's count.
   */
  inputTokens?: number | undefined;
  /** Told the parameters a provider left out (an upstream's `dropParams`), before the answer's headers go out. */
  onDropped?: ((names: string[]) => void) | undefined;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [detail: string]: unknown;
}

/** A `chat.completion.chunk` as JSON.parse gives it. Its fields come from an upstream: nothing is trusted to be well typed. */
export interface ChatChunk {
  choices?: unknown;
  usage?: unknown;
  error?: unknown;
  [key: string]: unknown;
}

/**
 * The wire format a delta is in: what its `data` is. A client API whose wire is the same gets `data` byte for
 * byte; any other gets it re-encoded from its parts (streams/transcode.ts).
 */
export type Wire = 'openai.chat' | 'openai.responses' | 'anthropic.messages' | 'gemini';

/**
 * Why an answer ended, in one vocabulary whatever the wire (Chat Completions' own): what `chat.end` says and
 * what an encoder maps into its wire. An upstream's own reason stays in the finish part's `native`.
 */
export type Finish = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'cancelled' | (string & {});

/** Token counts in one vocabulary. `input` counts every input token, cached or not; the others are shares of it or of `output`. */
export interface TokenUsage {
  input: number;
  output: number;
  /** Input tokens read from a prompt cache. */
  cacheRead?: number;
  /** Input tokens written to a prompt cache (Anthropic bills them apart). */
  cacheWrite?: number;
  /** Output tokens spent reasoning. */
  reasoning?: number;
  /** Counted by Jarvis (input from the prompt, output one token a delta), the upstream having reported none. */
  estimated?: boolean;
}

/**
 * What a delta says, decoded from its wire into neutral pieces: what every encoder builds its own wire from.
 * Tool calls are fragments by index: the first of a call carries its id and name, the rest argument text in order.
 */
export type Part =
  | { type: 'start'; id?: string | undefined; model?: string | undefined; usage?: TokenUsage | undefined }
  | { type: 'text'; text: string }
  | { type: 'refusal'; text: string }
  | { type: 'reasoning'; text: string }
  /** The signature that closes a reasoning block (Anthropic's thinking): the next turn must send it back. */
  | { type: 'reasoning_signature'; signature: string }
  /** Reasoning the upstream keeps encrypted (Anthropic's redacted_thinking): sent back as it came. */
  | { type: 'reasoning_redacted'; data: string }
  | { type: 'tool_call'; index: number; id?: string | undefined; name?: string | undefined; arguments: string }
  | { type: 'finish'; reason: Finish; native: string; stopSequence?: string | null | undefined }
  | { type: 'usage'; usage: TokenUsage };

/**
 * One piece of an answer, in the wire its upstream speaks. `data` is the piece exactly as the upstream sent it:
 * a client of the same wire gets it unchanged, so tool calls, reasoning, logprobs and fields no one knows yet
 * reach it whole. What Jarvis itself follows is choice 0 (events, barge-in and delivered counts): `text`, its
 * answer text in this piece ('' when none), and `finish`, normalised, once it has one. Nothing on the token
 * path decodes more than that; `parts` (partsOf) are decoded only when another wire needs them.
 */
export interface Delta {
  readonly wire: Wire;
  readonly data: string;
  /**
   * The data parsed. Undefined only for a chunk of exactly the token-chunk shape (token-chunk.ts), which the hot
   * path recognises without parsing; every other chunk comes parsed.
   */
  readonly chunk: ChatChunk | undefined;
  readonly text: string;
  readonly finish: Finish | undefined;
  /** The SSE event name, for wires that name their events (Anthropic's, the Responses API's). */
  readonly event?: string | undefined;
  /** Parts decoded already, by a decoder that keeps state across events (Anthropic's block indexes). */
  readonly parts?: readonly Part[] | undefined;
}

export interface ModelInfo {
  id: string;
  owned_by: string;
  created?: number;
  description?: string;
}

/** The endpoints Jarvis relays as they are, without sessions or events: the request goes up, the answer comes back. */
export type RelayEndpoint = 'completions' | 'embeddings';

export interface RelayRequest {
  endpoint: RelayEndpoint;
  model: string;
  body: Record<string, unknown>;
  /** As ChatRequest.headers: only what Jarvis allows upstream. */
  headers?: Record<string, string>;
}

export interface RelayResponse {
  status: number;
  /** Headers the client gets besides Jarvis's own: the upstream's content type, at least. */
  headers: Record<string, string>;
  /** The answer's bytes as they arrive; iterating it to the end (or stopping early) releases the upstream request. */
  body: AsyncIterable<Buffer | string> | Iterable<string>;
}

/** A Responses API request for an upstream that speaks it natively: the body as it goes up (streamed, not stored). */
export interface NativeResponsesRequest {
  model: string;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface StreamOptions {
  signal: AbortSignal;
  /** Told which upstream and model serve the answer, by a route once it has chosen among its targets. */
  served?: ((target: { upstream: string; model: string }) => void) | undefined;
  /** Told of each attempt a route makes (streams/attempts.ts); a provider that is not a route ignores it. */
  attempts?: AttemptListener | undefined;
}

export interface Provider {
  readonly id: string;
  /**
   * The wires it speaks natively; a route's are those every one of its targets speaks. `openai.responses`: it
   * serves POST /responses itself (configured per upstream), and /v1/responses is relayed there (streamResponses).
   */
  readonly wires: readonly Wire[];
  /**
   * Streams a Responses API answer as the upstream sends it: one delta per event (`data` as sent, `text` an
   * output_text delta's, `finish` normalised on the event that ends it). As stream() otherwise.
   */
  streamResponses?(request: NativeResponsesRequest, opts: StreamOptions): AsyncIterable<Delta[]>;
  /**
   * It speaks the Realtime API itself (configured per upstream: `realtime: native`): where its WebSocket is (the
   * model goes in `?model=`), and the headers that authenticate Jarvis to it. /v1/realtime is relayed there.
   */
  readonly realtime?: { url: string; headers: Record<string, string> };
  /** The models it serves, as /v1/models lists them; an upstream that can be asked is asked (and the answer cached). */
  models(): Promise<ModelInfo[]>;
  /**
   * Streams the answer as batches of deltas, each what one upstream read carried: one token when paced, dozens
   * in a flood, where one await per token would cost more than relaying it. Failures are JarvisErrors with the
   * HTTP status the client should get (an upstream's own error event among them, carried as it was sent);
   * aborting `signal` ends the iteration promptly with `signal.reason` and releases the upstream request.
   */
  stream(request: ChatRequest, opts: StreamOptions): AsyncIterable<Delta[]>;
  /**
   * POST /v1/completions or /v1/embeddings for `request.model`: resolves once the answer's status is known (an
   * error status rejects with its JarvisError, as stream() does); aborting `signal` releases the upstream request.
   */
  relay(request: RelayRequest, opts: { signal: AbortSignal }): Promise<RelayResponse>;
  /** The input tokens of a turn as the upstream counts them, for one that can (Anthropic's count_tokens). */
  countTokens?(request: ChatRequest, opts: { signal: AbortSignal }): Promise<number>;
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

/** The turn's input tokens as Jarvis estimates them: the client API's estimate, else four characters a token. */
export function estimatedInputTokens(request: ChatRequest): number {
  return request.inputTokens ?? Math.max(1, Math.ceil(promptText(request.messages).length / 4));
}

export function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role === 'user') return promptText([m]).trim();
  }
  return '';
}
