import { isObject, type Obj } from '../json.js';

/**
 * Anthropic's signed thinking blocks carried in a Responses API reasoning item's `encrypted_content`, the opaque
 * field OpenAI's own stateless reasoning round trip uses: a client that sends the item back (or a stored chain)
 * gives them back to Anthropic on the next turn of a tool loop, on any instance. The prefix keeps them apart from
 * OpenAI's own encrypted reasoning, which goes only to OpenAI.
 */
const PREFIX = 'jarvis.thinking.v1:';

export function encodeSignedThinking(blocks: Obj[]): string {
  return PREFIX + Buffer.from(JSON.stringify(blocks)).toString('base64url');
}

/** The blocks of an `encrypted_content` Jarvis made; undefined for anything else (OpenAI's own, or garbage). */
export function decodeSignedThinking(value: unknown): Obj[] | undefined {
  if (typeof value !== 'string' || !value.startsWith(PREFIX)) return undefined;
  try {
    const blocks: unknown = JSON.parse(Buffer.from(value.slice(PREFIX.length), 'base64url').toString('utf8'));
    return Array.isArray(blocks) && blocks.every(isObject) ? blocks : undefined;
  } catch {
    return undefined;
  }
}
