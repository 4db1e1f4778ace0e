import type { JarvisError } from '../errors.js';
import type { Usage } from '../providers/provider.js';

export const DONE_FRAME = 'data: [DONE]\n\n';

/**
 * Pre-built `chat.completion.chunk` frames for one response. Everything but the token text is fixed per
 * response, so a token costs one JSON.stringify of its text and a string concatenation.
 */
export class ChunkFrames {
  readonly #head: string;
  readonly #usageHead: string;

  constructor(id: string, model: string, created: number) {
    const common = `{"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"choices":`;
    this.#head = `data: ${common}[{"index":0,"delta":`;
    this.#usageHead = `data: ${common}[],"usage":`;
  }

  role(): string {
    return `${this.#head}{"role":"assistant","content":""},"finish_reason":null}]}\n\n`;
  }

  text(text: string): string {
    return `${this.#head}{"content":${JSON.stringify(text)}},"finish_reason":null}]}\n\n`;
  }

  delta(delta: Record<string, unknown>): string {
    return `${this.#head}${JSON.stringify(delta)},"finish_reason":null}]}\n\n`;
  }

  finish(reason: string): string {
    return `${this.#head}{},"finish_reason":${JSON.stringify(reason)}}]}\n\n`;
  }

  usage(usage: Usage): string {
    return `${this.#usageHead}${JSON.stringify(usage)}}\n\n`;
  }

  static error(error: JarvisError): string {
    return `data: ${JSON.stringify(error.toJSON())}\n\n`;
  }
}
