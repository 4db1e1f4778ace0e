// How both OpenAI fakes are steered: by the text of the request's last message, as any client library sends it,
// so a test, a benchmark or a client talking through a gateway needs no side channel (no extra body field, header
// or config) and every gateway path that carries the user's words carries the steering too.
//
// A knob is a `name:value` word in that text: at its start or after a character that is neither a word character
// nor `-` (so `delay:` is not read inside `end-delay:`). Numbers are digits; `scenario:` takes a name
// (`[\w-]+`); `text:` takes everything up to the next white space. A flag (`no-done`) is the bare name. The first
// occurrence counts; unknown names are ignored.
//
//   both fakes:  tokens:<n> (the answer's length), delay:<ms> (between chunks)
//   faithful.ts: scenario:<name> (which answer: tool, reasoning, error-mid, http-429, flood, ...)
//   mock.ts:     ttft:<ms>, headers-delay:<ms>, end-delay:<ms>, fail-after:<n>, stall-after:<n>, error-after:<n>,
//                malformed-after:<n>, status:<code>, retry-after-ms:<ms>, no-retry-after, no-done, text:<word>
type Json = Record<string, unknown>;

/** The role and the text of a chat request's last message (text parts joined). */
export function lastMessage(body: Json): { role: string; text: string } {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  const last = messages.at(-1) ?? {};
  const content = last.content;
  const text = typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => (p as Json).text ?? '').join('') : '';
  return { role: String(last.role ?? ''), text };
}

const patterns = new Map<string, RegExp>();
/** `name:<value>`, compiled once per name. */
function at(name: string, value: string): RegExp {
  const key = `${name}:${value}`;
  let re = patterns.get(key);
  if (!re) patterns.set(key, (re = new RegExp(`(?<![\\w-])${name}:(${value})`)));
  return re;
}

/** The number a prompt gives `name` (`name:<digits>`), or `fallback`. */
export function knob(prompt: string, name: string, fallback: number): number;
export function knob(prompt: string, name: string): number | undefined;
export function knob(prompt: string, name: string, fallback?: number): number | undefined {
  const m = at(name, '\\d+').exec(prompt);
  return m ? Number(m[1]) : fallback;
}

/** The scenario a prompt names (`scenario:<name>`), if any. */
export function scenarioIn(prompt: string): string | undefined {
  return at('scenario', '[\\w-]+').exec(prompt)?.[1];
}

/** Whether a prompt holds the bare flag `name`. */
export function flag(prompt: string, name: string): boolean {
  return new RegExp(`(?<![\\w-])${name}(?![\\w:-])`).test(prompt);
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
