import type { AttemptTrace, TurnTrace } from '../observability/turn-trace.js';
import type { AttemptEnd, AttemptHandle, AttemptListener, AttemptStart } from './attempts.js';

interface Noted {
  start: AttemptStart;
  end: AttemptEnd | undefined;
  won: boolean;
  trace: AttemptTrace | undefined;
}

/**
 * One turn's route attempts, kept for its ledger lines, each with its span when tracing is on (the winner's span
 * ends with the turn's).
 */
export class TurnAttempts implements AttemptListener {
  readonly #trace: TurnTrace | undefined;
  readonly list: Noted[] = [];

  constructor(trace: TurnTrace | undefined) {
    this.#trace = trace;
  }

  get winner(): AttemptStart | undefined {
    return this.list.find((a) => a.won)?.start;
  }

  started(start: AttemptStart): AttemptHandle {
    const noted: Noted = { start, end: undefined, won: false, trace: this.#trace?.attempt(start) };
    this.list.push(noted);
    const traceparent = noted.trace?.traceparent;
    return {
      headers: traceparent ? { traceparent } : {},
      won: () => void (noted.won = true),
      ended: (e) => {
        noted.end = e;
        noted.trace?.end(e);
      },
    };
  }
}
