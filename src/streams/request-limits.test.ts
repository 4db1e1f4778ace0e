import { describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../config.js';
import { JarvisError } from '../errors.js';
import type { ChatMessage } from '../providers/provider.js';
import { checkChatLimits, checkStreamCapacity, contentChars } from './request-limits.js';

const msg = (content: ChatMessage['content']): ChatMessage => ({ role: 'user', content });

describe('contentChars', () => {
  it('counts string content and text parts, and nothing else', () => {
    expect(contentChars([msg('abc'), msg([{ type: 'text', text: 'de' }, { type: 'image_url', image_url: { url: 'x'.repeat(99) } }]), msg(null), msg(undefined)])).toBe(5);
  });

  it('stops once past the bound it is given', () => {
    expect(contentChars([msg('abc'), msg('def'), msg('ghi')], 2)).toBe(3);
  });
});

describe('checkChatLimits', () => {
  const limits = { maxMessages: 2, maxContentChars: 5 };
  const codeOf = (f: () => void) => {
    try {
      f();
    } catch (err) {
      return err instanceof JarvisError ? { code: err.code, param: err.param, status: err.status } : err;
    }
    return undefined;
  };

  it('passes at the limits', () => {
    expect(codeOf(() => checkChatLimits([msg('ab'), msg('cde')], limits))).toBeUndefined();
  });

  it('refuses one message too many, and one character too many', () => {
    expect(codeOf(() => checkChatLimits([msg(''), msg(''), msg('')], limits))).toEqual({ code: 'array_above_max_length', param: 'messages', status: 400 });
    expect(codeOf(() => checkChatLimits([msg('ab'), msg('cdef')], limits))).toEqual({ code: 'context_length_exceeded', param: 'messages', status: 400 });
  });
});

describe('checkStreamCapacity', () => {
  it('refuses at the limit with 503 overloaded and Retry-After', () => {
    expect(() => checkStreamCapacity(1, 2)).not.toThrow();
    expect(() => checkStreamCapacity(2, 2)).toThrow(expect.objectContaining({ status: 503, code: 'overloaded', headers: { 'retry-after': '1' } }));
  });
});

describe('the limits in configuration', () => {
  it('have defaults, and come from the environment', () => {
    expect(loadConfig({})).toMatchObject({ maxMessages: 1000, maxContentChars: 1_000_000, maxHeaderBytes: 16384, requestTimeoutMs: 30_000, maxStreams: 10_000, logContent: false, upstreamIdleMs: 60_000 });
    const env = {
      JARVIS_MAX_MESSAGES: '10',
      JARVIS_MAX_CONTENT_CHARS: '2000',
      JARVIS_MAX_HEADER_BYTES: '8192',
      JARVIS_REQUEST_TIMEOUT_MS: '5000',
      JARVIS_MAX_STREAMS: '3',
      JARVIS_LOG_CONTENT: '1',
    };
    expect(loadConfig(env)).toMatchObject({ maxMessages: 10, maxContentChars: 2000, maxHeaderBytes: 8192, requestTimeoutMs: 5000, maxStreams: 3, logContent: true });
  });

  it.each([
    ['JARVIS_MAX_MESSAGES', '0'],
    ['JARVIS_MAX_STREAMS', 'many'],
    ['JARVIS_MAX_HEADER_BYTES', '100'],
    ['JARVIS_REQUEST_TIMEOUT_MS', '1.5'],
    ['JARVIS_LOG_CONTENT', 'maybe'],
  ])('refuse %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  });
});
