import type { AttemptEnd, AttemptStart } from '../streams/attempts.js';

/** What a turn's span starts with: who asked for what, and the caller's trace context to continue. */
export interface TurnTraceStart {
  requestId: string;
  /** chat.completions, responses, messages, completions, embeddings, realtime. */
  api: string;
  /** The GenAI operation: chat, text_completion, embeddings. */
  operation: 'chat' | 'text_completion' | 'embeddings';
  requestModel: string | undefined;
  /** X-Session-Id as the client sent it. */
  sessionId: string | undefined;
  /** The session as the registry keys it (per tenant): what tells which turn superseded which. */
  sessionKey: string | undefined;
  key: string | null;
  /** The caller's valid W3C traceparent (and tracestate), continued when given. */
  traceparent: string | undefined;
  tracestate: string | undefined;
  /** The prompt's last user text, only with JARVIS_LOG_CONTENT=1. */
  prompt?: string | undefined;
}

/** How the turn ended, with what the GenAI conventions record. */
export interface TurnTraceEnd {
  outcome: 'end' | 'cancelled' | 'error' | 'rejected';
  /** The cancel reason (cancelled) or the error's code (error, rejected). */
  reason?: string | undefined;
  status?: number | undefined;
  responseModel?: string | undefined;
  provider?: string | undefined;
  upstream?: string | undefined;
  usage?: { input: number; output: number; cacheRead?: number | undefined; reasoning?: number | undefined; estimated: boolean } | undefined;
  finishReason?: string | undefined;
  ttftMs?: number | undefined;
  /** The answer's text (cut short), only with JARVIS_LOG_CONTENT=1. */
  completion?: string | undefined;
}

/** One route attempt's child span. */
export interface AttemptTrace {
  /** The traceparent naming the attempt's span: its upstream request's parent. */
  readonly traceparent: string | undefined;
  /** An attempt that did not answer; the winner ends with the turn. */
  end(e: AttemptEnd): void;
}

/** One turn's span (a request to a model, or one response on a WebSocket). */
export interface TurnTrace {
  /** The traceparent naming the turn's span: the parent of the upstream request when no route attempt is. */
  readonly traceparent: string | undefined;
  attempt(a: AttemptStart): AttemptTrace;
  end(e: TurnTraceEnd): void;
}

/** Tracing for an instance: on when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set, else absent and free. */
export interface Tracing {
  startTurn(s: TurnTraceStart): TurnTrace;
  /** Exports what is pending, then stops. */
  shutdown(): Promise<void>;
}
