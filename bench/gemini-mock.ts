// The bench's Gemini upstream, a process of its own like the OpenAI mock and bench/anthropic-mock.ts:
//   node --import tsx bench/gemini-mock.ts --port 0 [--host 127.0.0.1] [--defaults '{"tokens":50,"delayMs":20,"apiKey":"k"}']
// Prints one line, `GEMINI_MOCK_READY <origin>` (a Gemini upstream's baseUrl is the origin + `/v1beta`).
//
// POST /v1beta/models/{model}:streamGenerateContent?alt=sse answers with the chunks of fakes/gemini, framed as it
// frames them (its `render` and `sse`: `data: {GenerateContentResponse}\r\n\r\n`, one text part a chunk, each chunk
// with its cumulative usageMetadata, the last with finishReason STOP; no [DONE], the body just ends), after the
// checks the fake makes of a request (the key in `x-goog-api-key`, the proto parse that refuses unknown names, the
// conversation's turns). What differs is the pacing, which is the OpenAI mock's, so every upstream of the wire
// scenario serves the same paced answer: the first chunk at once, one every `delayMs`, and the body's end `delayMs`
// after the last (where the other mocks write their closing frames: Gemini's finish rides on the last token's chunk).
// The tokens are the OpenAI mock's texts (`tok0 `, `tok1 `, ...); generationConfig.maxOutputTokens below `tokens`
// cuts the answer (finishReason MAX_TOKENS), as the mock does with max_tokens.
// GET /bench/requests says how many answers it has started, so the bench can tell which upstream served a phase;
// GET /v1beta/models lists the one model it serves, for a readiness probe.
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { serveMockProcess } from './mock-process.js';
import { modelInfo } from '../fakes/gemini/index.js';
import { render, type Answer } from '../fakes/gemini/answers.js';
import { invalidConversation, parse } from '../fakes/gemini/request.js';
import { BAD_KEY, NO_KEY, invalidArgument, sendError, sendJson, sse, streamHeaders, writePaced, type Json } from '../fakes/gemini/wire.js';

export interface GeminiMockKnobs {
  /** Text tokens in an answer (default 5). */
  tokens?: number;
  /** Between chunks, ms (default 0: every chunk at once). */
  delayMs?: number;
  /** The key a request must present in `x-goog-api-key` (default: any key, but one). */
  apiKey?: string;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    defaults: { type: 'string' },
  },
});
const knobs = (values.defaults ? JSON.parse(values.defaults) : {}) as GeminiMockKnobs;
const TOKENS = knobs.tokens ?? 5;
const DELAY_MS = knobs.delayMs ?? 0;

const ROUTE = /^\/v1beta\/models\/([^/:]+):streamGenerateContent$/;

/** The answer's SSE frames, one chunk of one text part each: at most `maxOutputTokens` of them. */
function framesOf(request: Json, model: string): string[] {
  const budget = (request.generationConfig as Json | undefined)?.maxOutputTokens;
  const n = Math.max(1, Math.min(TOKENS, typeof budget === 'number' ? budget : TOKENS));
  const answer: Answer = {
    scenario: 'text',
    chunks: Array.from({ length: n }, (_, i) => [{ text: `tok${i} ` }]),
    finishReason: n < TOKENS ? 'MAX_TOKENS' : 'STOP',
    thoughtsTokens: 0,
    cachedTokens: 0,
    usage: true,
  };
  return render(request, answer, model).chunks.map(sse);
}

let answered = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://mock');
    if (req.method === 'GET' && url.pathname === '/bench/requests') return sendJson(res, 200, { requests: answered });
    const key = req.headers['x-goog-api-key'];
    if (typeof key !== 'string' || key === '') return sendError(res, NO_KEY);
    if (knobs.apiKey !== undefined && key !== knobs.apiKey) return sendError(res, BAD_KEY);
    if (req.method === 'GET' && url.pathname === '/v1beta/models') return sendJson(res, 200, { models: [modelInfo('gemini-bench')] });
    const route = ROUTE.exec(url.pathname);
    if (req.method !== 'POST' || !route) return sendError(res, { code: 404, status: 'NOT_FOUND', message: `Method not found: ${req.method} ${url.pathname}` });
    if (url.searchParams.get('alt') !== 'sse') return sendError(res, invalidArgument('bench mock: only streamGenerateContent?alt=sse'));
    const model = decodeURIComponent(route[1]!);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return sendError(res, invalidArgument('Invalid JSON payload received. Unexpected token.'));
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return sendError(res, invalidArgument('Invalid JSON payload received. Expected an object.'));
    const parsed = parse(body as Json, 'GenerateContentRequest');
    if ('error' in parsed) return sendError(res, parsed.error);
    const invalid = invalidConversation(parsed.request, model);
    if (invalid) return sendError(res, invalid);
    answered++;
    res.writeHead(200, streamHeaders(true));
    writePaced(res, framesOf(parsed.request, model), DELAY_MS);
  });
});
serveMockProcess(server, values.host, Number(values.port), 'GEMINI_MOCK_READY');
