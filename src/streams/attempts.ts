/**
 * A route's attempts as whoever accounts for them sees them (the usage ledger bills each, tracing gives each a
 * span): told when an attempt starts, when it wins, and how one that did not win ended. A provider that is not a
 * route never calls it; its stream is the one attempt.
 */
export interface AttemptStart {
  /** 1, 2, ... in the order the route started them. */
  n: number;
  upstream: string;
  model: string;
  /** openai, anthropic, gemini, simulator. */
  provider: string;
  hedge: boolean;
}

/** How an attempt that did not answer ended, and what it had generated meanwhile (paid for all the same). */
export interface AttemptEnd {
  outcome: 'cancelled' | 'error';
  /** hedge_lost, cancelled (the stream was), first_token_timeout, or the error's code. */
  reason: string;
  /** Deltas with answer text it had sent: its output tokens as Jarvis counts them. */
  outputTokens: number;
  generatedChars: number;
  /** Whether the upstream had accepted the request (an answer had begun): its input was then paid for. */
  answered: boolean;
  durationMs: number;
}

export interface AttemptHandle {
  /** Headers the attempt's upstream request carries (its trace context). */
  readonly headers: Readonly<Record<string, string>>;
  /** It answers the client: how it ends is the stream's outcome. */
  won(): void;
  ended(e: AttemptEnd): void;
}

export interface AttemptListener {
  started(a: AttemptStart): AttemptHandle;
}
