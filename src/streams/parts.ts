import { chatParts } from '../providers/openai-compatible/chat-parts.js';
import { responsesParts } from '../providers/openai-compatible/responses-parts.js';
import type { Delta, Part } from '../providers/provider.js';

/**
 * A delta's parts: decoded already by a decoder that keeps state (Anthropic's), else decoded now from its data.
 * Never called for a delta that goes out in its own wire: the token path stays undecoded.
 */
export function partsOf(d: Delta): readonly Part[] {
  if (d.parts) return d.parts;
  if (d.text !== '' && d.chunk === undefined) return [{ type: 'text', text: d.text }];
  switch (d.wire) {
    case 'openai.chat':
      return chatParts(d);
    case 'openai.responses':
      return responsesParts(d);
    default:
      return d.text === '' ? [] : [{ type: 'text', text: d.text }];
  }
}
