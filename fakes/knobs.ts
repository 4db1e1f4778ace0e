// How a fake is steered: by knobs in the text of the request's last message, as any client library sends it, so
// a test, a benchmark or a client talking through a gateway needs no side channel (no extra body field, header or
// config) and every gateway path that carries the user's words carries the steering too. Every fake reads them
// the same way.
//
// A knob is a `name:value` word in that text: at its start or after a character that is neither a word character
// nor `-` (so `delay:` is not read inside `end-delay:`). Numbers are digits; `scenario:` takes a name
// (`[\w-]+`). A flag (`no-done`) is the bare name. The first occurrence counts; unknown names are ignored.

const patterns = new Map<string, RegExp>();
/** `name:<value>`, compiled once per name. */
export function at(name: string, value: string): RegExp {
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
