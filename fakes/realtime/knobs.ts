// The knobs the Realtime fake reads, in the grammar of fakes/knobs.ts, from the text of the last user message of
// the conversation a response answers (its `input_text`, or the `transcript` of its audio), followed by the
// response's instructions (else the session's), so an answer to audio alone can be steered too. The user's text
// comes first, and the first occurrence counts.
//
//   tokens:<n>      the answer's length: n words (`t0 t1 ...`), each one transcript (or text) delta and, with audio,
//                   one audio delta of AUDIO_CHUNK_MS; without it, the default answer (ANSWER)
//   delay:<ms>      the pause before each word: a long answer with a delay is slow enough to cancel
//   scenario:error  an `error` event (invalid_request_error) instead of the response
//   scenario:close  the server closes the socket instead of answering, with close:<code> (default 1011)
//   close:<code>    the same, with that code (one a server may send: 1000-1003, 1007-1014, 3000-4999; else 1011)
//   close-after:<n> the response starts, n words are sent, then the server closes the socket (close:<code>, 1011)
//   scenario:failed the response ends with status `failed` (a server_error) after fail-after:<n> words (default 0)
import { knob, scenarioIn } from '../knobs.js';

export { knob, scenarioIn };

/** The words of the default answer, as the transcript (or text) deltas carry them. */
export const ANSWER = ['Hello', '!', ' How', ' can', ' I', ' help', ' you', ' today', '?'];

/** The answer of `tokens:<n>`: `t0 t1 ...`, one word a delta. */
export const counted = (n: number) => Array.from({ length: n }, (_, i) => `t${i} `);

export interface RealtimeKnobs {
  words: string[];
  delayMs: number;
  scenario: string | undefined;
  /** Close the socket with this code: at once (scenario:close, close:<code>), or after `closeAfter` words. */
  closeCode: number | undefined;
  closeAfter: number | undefined;
  failAfter: number | undefined;
}

export function knobsIn(prompt: string): RealtimeKnobs {
  const scenario = scenarioIn(prompt);
  const tokens = knob(prompt, 'tokens');
  const closeAfter = knob(prompt, 'close-after');
  const code = knob(prompt, 'close');
  const closeNow = scenario === 'close' || (code !== undefined && closeAfter === undefined);
  return {
    words: tokens !== undefined ? counted(tokens) : ANSWER,
    delayMs: knob(prompt, 'delay', 0),
    scenario,
    closeCode: closeNow || closeAfter !== undefined ? (code ?? 1011) : undefined,
    closeAfter: closeNow ? undefined : closeAfter,
    failAfter: scenario === 'failed' ? knob(prompt, 'fail-after', 0) : undefined,
  };
}

