// The knobs the OpenAI fakes read, in the grammar of fakes/knobs.ts (shared with the Anthropic fake); `text:`
// takes everything up to the next white space.
//
//   both fakes:  tokens:<n> (the answer's length), delay:<ms> (between chunks)
//   faithful.ts: scenario:<name> (which answer: tool, reasoning, error-mid, http-429, flood, ...)
//   mock.ts:     ttft:<ms>, headers-delay:<ms>, end-delay:<ms>, fail-after:<n>, stall-after:<n>, error-after:<n>,
//                malformed-after:<n>, status:<code>, retry-after-ms:<ms>, no-retry-after, no-done, text:<word>
import { at, flag, knob, scenarioIn } from '../knobs.js';

export { flag, knob, scenarioIn };

type Json = Record<string, unknown>;

/** The role and the text of a chat request's last message (text parts joined). */
export function lastMessage(body: Json): { role: string; text: string } {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  const last = messages.at(-1) ?? {};
  const content = last.content;
  const text = typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => (p as Json).text ?? '').join('') : '';
  return { role: String(last.role ?? ''), text };
}

/** What one request to the mock asks for; in its constructor's `defaults`, what a request gets when it does not say. */
export interface MockKnobs {
  tokens?: number;
  delayMs?: number;
  ttftMs?: number;
  headersDelayMs?: number;
  failAfter?: number;
  stallAfter?: number;
  errorAfter?: number;
  malformedAfter?: number;
  noDone?: boolean;
  /** Holds the response open this long after [DONE] before ending it. */
  endDelayMs?: number;
  status?: number;
  /** With status 429: the retry-after-ms it sends (default: `retry-after: 1`), or none at all (noRetryAfter). */
  retryAfterMs?: number;
  noRetryAfter?: boolean;
  text?: string;
}

type NumberKnob = Exclude<keyof MockKnobs, 'noDone' | 'noRetryAfter' | 'text'>;
type FlagKnob = 'noDone' | 'noRetryAfter';

/** Each numeric knob's name in a prompt. */
export const NUMBER_KNOBS: Record<NumberKnob, string> = {
  tokens: 'tokens',
  delayMs: 'delay',
  ttftMs: 'ttft',
  headersDelayMs: 'headers-delay',
  failAfter: 'fail-after',
  stallAfter: 'stall-after',
  errorAfter: 'error-after',
  malformedAfter: 'malformed-after',
  endDelayMs: 'end-delay',
  status: 'status',
  retryAfterMs: 'retry-after-ms',
};
const FLAG_KNOBS: Record<FlagKnob, string> = { noDone: 'no-done', noRetryAfter: 'no-retry-after' };

/** The mock's knobs a prompt gives (only those it gives). */
export function mockKnobsIn(prompt: string): MockKnobs {
  const out: MockKnobs = {};
  for (const [key, name] of Object.entries(NUMBER_KNOBS) as [NumberKnob, string][]) {
    const v = knob(prompt, name);
    if (v !== undefined) out[key] = v;
  }
  for (const [key, name] of Object.entries(FLAG_KNOBS) as [FlagKnob, string][]) if (flag(prompt, name)) out[key] = true;
  const text = at('text', '\\S+').exec(prompt)?.[1];
  if (text !== undefined) out.text = text;
  return out;
}

/** The words that ask the mock for `k`: `knobText({ tokens: 5, failAfter: 3 })` is `tokens:5 fail-after:3`. */
export function knobText(k: MockKnobs): string {
  const words: string[] = [];
  for (const [key, value] of Object.entries(k) as [keyof MockKnobs, unknown][]) {
    if (value === undefined || value === false) continue;
    if (key === 'text') {
      if (typeof value !== 'string' || value === '' || /\s/.test(value)) throw new Error(`text knob must be one word: ${JSON.stringify(value)}`);
      words.push(`text:${value}`);
    } else if (key === 'noDone' || key === 'noRetryAfter') words.push(FLAG_KNOBS[key]);
    else if (typeof value === 'number' && Number.isInteger(value) && value >= 0) words.push(`${NUMBER_KNOBS[key]}:${value}`);
    else throw new Error(`knob ${key} must be a whole number >= 0: ${JSON.stringify(value)}`);
  }
  return words.join(' ');
}

const KNOB_WORD = new RegExp(`^(?:(?:${[...Object.values(NUMBER_KNOBS), 'text', 'scenario'].join('|')}):\\S*|${Object.values(FLAG_KNOBS).join('|')})$`);

/** Whether a word of a prompt is a knob (steering, not part of what is asked: the mock does not count it as a prompt token). */
export const isKnobWord = (word: string) => KNOB_WORD.test(word);
