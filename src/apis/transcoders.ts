import type { Wire } from '../providers/provider.js';
import type { Transcoder } from '../streams/transcode.js';
import { messageIdOf, MessagesTranscoder } from './anthropic-messages/encoder.js';
import { ChatTranscoder } from './openai-chat/encoder.js';

/** What names an answer that a transcoder builds, until the upstream names its own. */
export interface AnswerHead {
  id: string;
  model: string;
  created: number;
  /** The turn's input tokens as estimated (what a Messages message_start says before the upstream does). */
  inputTokens: number;
}

/** The transcoder into each client wire: one encoder per API, fed any upstream's parts. */
export function transcoderFor(wire: Wire, head: AnswerHead): Transcoder {
  switch (wire) {
    case 'openai.chat':
      return new ChatTranscoder({ id: head.id, model: head.model, created: head.created });
    case 'anthropic.messages':
      return new MessagesTranscoder({ id: messageIdOf(head.id), model: head.model, inputTokens: head.inputTokens });
    default:
      throw new Error(`no client API is served in ${wire} from another wire`);
  }
}
