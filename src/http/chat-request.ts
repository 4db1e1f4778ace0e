import { Type, type Static } from '@sinclair/typebox';

const TextPart = Type.Object({ type: Type.String({ minLength: 1 }), text: Type.Optional(Type.String()) }, { additionalProperties: true });

const Message = Type.Object(
  {
    role: Type.Union(['system', 'developer', 'user', 'assistant', 'tool', 'function'].map((r) => Type.Literal(r))),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(TextPart), Type.Null()])),
    name: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/**
 * What Jarvis checks before anything reaches a provider. Unknown fields are allowed and passed through to
 * upstreams; types are strict (no coercion), as OpenAI's are.
 */
export const ChatCompletionRequest = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    messages: Type.Array(Message, { minItems: 1 }),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: true }), Type.Null()])),
    max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
    top_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
    // OpenAI's bound: the choices of one request are generated (by the simulator) and buffered together.
    n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 128 }), Type.Null()])),
    stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 }), Type.Null()])),
    user: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

export type ChatCompletionBody = Static<typeof ChatCompletionRequest> & Record<string, unknown>;

export { SESSION_ID } from '../streams/admission.js';
