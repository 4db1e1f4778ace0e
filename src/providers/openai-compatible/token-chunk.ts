// Nearly every event of an OpenAI-style stream is one token in the same compact shape. Recognising that shape
// with one anchored regular expression costs a fifth of JSON.parse and allocates nothing but the text, so the
// flood path parses no JSON; every other event (role, finish, usage, tool calls, errors, other key orders or
// whitespace) takes the general path. The grammar below is JSON's own, so a match is always valid JSON.

/** A JSON string literal, exactly as JSON's grammar has it. */
export const JSON_STRING = String.raw`"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"`;
const NUMBER = String.raw`-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?`;
const SCALAR = `(?:${JSON_STRING}|${NUMBER}|null|true|false)`;
// Top-level keys that say nothing about the answer. `choices`, `usage` and `error` are not among them, so a
// second `choices` (which JSON.parse would let win) or an `error` can never hide behind a match.
const INERT_KEY = '"(?:id|object|created|model|system_fingerprint|service_tier|obfuscation)"';
const INERT = `${INERT_KEY}:${SCALAR}`;

const TOKEN_CHUNK = new RegExp(
  `^\\{(?:${INERT},)*` +
    `"choices":\\[\\{"index":0,"delta":\\{(?:"role":"assistant",)?"content":(${JSON_STRING})\\}(?:,"logprobs":null)?,"finish_reason":null\\}\\]` +
    `(?:,(?:${INERT}|"usage":null))*\\}$`,
);

/**
 * The text of an event that is exactly one token chunk (possibly '' for the empty first chunk), or undefined
 * when the event needs the general parser. For any input it returns a string for, JSON.parse and the general
 * path would find that same text and nothing else; `token-chunk.test.ts` checks this property.
 */
export function tokenChunkText(data: string): string | undefined {
  const match = TOKEN_CHUNK.exec(data);
  if (!match) return undefined;
  return unquote(match[1]!);
}

/** A JSON string literal's value: most tokens have no escapes, and then it is the characters between the quotes. */
export function unquote(quoted: string): string {
  return quoted.includes('\\') ? (JSON.parse(quoted) as string) : quoted.slice(1, -1);
}
