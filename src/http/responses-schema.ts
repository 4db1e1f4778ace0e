/** The body of POST /v1/responses, and of a `response.create` on its WebSocket (less the envelope): Fastify's schema. */
export const ResponsesRequest = {
  type: 'object',
  required: ['input'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    input: { anyOf: [{ type: 'string' }, { type: 'array' }] },
    instructions: { type: ['string', 'null'] },
    stream: { type: ['boolean', 'null'] },
    store: { type: ['boolean', 'null'] },
    previous_response_id: { type: ['string', 'null'], maxLength: 256 },
    metadata: { type: ['object', 'null'] },
    max_output_tokens: { type: ['integer', 'null'], minimum: 1 },
    temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
    top_p: { type: ['number', 'null'], minimum: 0, maximum: 1 },
  },
} as const;
