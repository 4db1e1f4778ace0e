import type { Config } from '../config.js';
import { JarvisError } from '../errors.js';
import type { ChatMessage } from '../providers/provider.js';

export type ChatLimits = Pick<Config, 'maxMessages' | 'maxContentChars'>;

/**
 * Text characters across the messages (string content and text parts), as JavaScript counts them (UTF-16 units).
 * Stops counting once past `stopAfter`: the caller only needs to know that the limit is exceeded.
 */
export function contentChars(messages: readonly ChatMessage[], stopAfter = Infinity): number {
  let total = 0;
  for (const m of messages) {
    if (typeof m.content === 'string') total += m.content.length;
    else if (Array.isArray(m.content)) for (const p of m.content) if (typeof p.text === 'string') total += p.text.length;
    if (total > stopAfter) break;
  }
  return total;
}

/**
 * Limits a schema cannot express because they come from configuration. The body limit already bounds the bytes;
 * these bound what one request may ask a provider to read, with the OpenAI code a client can act on.
 */
export function checkChatLimits(messages: readonly ChatMessage[], limits: ChatLimits): void {
  if (messages.length > limits.maxMessages) {
    throw new JarvisError('JARVIS_ERR_TOO_MANY_MESSAGES', `Invalid 'messages': array too long. Expected at most ${limits.maxMessages} messages, got ${messages.length}.`, {
      param: 'messages',
    });
  }
  if (contentChars(messages, limits.maxContentChars) > limits.maxContentChars) {
    throw new JarvisError('JARVIS_ERR_CONTENT_TOO_LONG', `The messages hold more than ${limits.maxContentChars} characters of content; shorten the conversation.`, {
      param: 'messages',
    });
  }
}

/**
 * Refuses a new stream when this process already runs `maxStreams`. Checked synchronously right before the stream
 * registers itself, so concurrent requests cannot all slip past the same count; running streams are not touched.
 */
export function checkStreamCapacity(liveStreams: number, maxStreams: number): void {
  if (liveStreams >= maxStreams) {
    throw new JarvisError('JARVIS_ERR_OVERLOADED', `Jarvis is serving its maximum of ${maxStreams} concurrent streams; retry shortly.`, {
      headers: { 'retry-after': '1' },
    });
  }
}
