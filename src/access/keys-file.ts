import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/**
 * The entries of a keys file (JARVIS_KEYS_FILE): JSON or YAML (by extension), a list of entries or an object
 * with a `keys` list. Only parsed here; config.ts validates the entries with the rest of the configuration.
 * Throws an Error with a one-line message that never quotes the file's content (it holds keys).
 */
export function readKeysFile(path: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read JARVIS_KEYS_FILE ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    // A parser's message may quote the offending text; its position is all a one-line error keeps.
    const position = /line \d+(,? col(umn)? \d+)?|position \d+/i.exec((err as Error).message)?.[0];
    throw new Error(`cannot parse JARVIS_KEYS_FILE ${path}${position ? ` at ${position}` : ''}`);
  }
  const list = Array.isArray(parsed) ? parsed : parsed !== null && typeof parsed === 'object' ? (parsed as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(list)) throw new Error(`JARVIS_KEYS_FILE ${path}: expected a list of keys (or an object with a "keys" list)`);
  return list;
}
