// The bench's Anthropic upstream, a process of its own like the OpenAI mock (fakes/openai/mock-cli.ts):
//   node --import tsx bench/anthropic-mock.ts --port 0 [--host 127.0.0.1] [--defaults '{"tokens":50,"delayMs":20}']
// Prints one line, `ANTHROPIC_MOCK_READY <origin>` (the origin is an Anthropic upstream's baseUrl).
//
// POST /v1/messages answers with the events of fakes/anthropic, byte for byte (its `render`: message_start,
// content_block_start, ping, one text_delta per token, content_block_stop, message_delta with usage, message_stop),
// checked as the fake checks a request (anthropic-version, required fields). What differs is the pacing, which is
// the OpenAI mock's, so the two upstreams serve the same paced answer: the opening events go out with the first
// token at once, then one token every `delayMs`, then the closing events `delayMs` after the last token. (The
// fake paces every event, the opening and closing ones too: six more reads a stream for the gateway, and a first
// token three delays later, which would be measured as the wire's cost.) The tokens are the OpenAI mock's texts
// (`tok0 `, `tok1 `, ...); `max_tokens` below `tokens` cuts the answer (stop_reason max_tokens), as the mock does.
// GET /bench/requests says how many answers it has started, so the bench can tell which upstream served a phase.
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { serveMockProcess } from './mock-process.js';
import { API_VERSIONS, errorBody, render, type Answer } from '../fakes/anthropic/index.js';
import { invalidRequest } from '../fakes/anthropic/request.js';
import { sse, type Json } from '../fakes/anthropic/wire.js';

export interface AnthropicMockKnobs {
  /** Text tokens in an answer (default 5). */
  tokens?: number;
  /** Between tokens, ms (default 0: every token at once). */
  delayMs?: number;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    defaults: { type: 'string' },
  },
});
const knobs = (values.defaults ? JSON.parse(values.defaults) : {}) as AnthropicMockKnobs;
const TOKENS = knobs.tokens ?? 5;
const DELAY_MS = knobs.delayMs ?? 0;

function sendJson(res: http.ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'request-id': 'req_bench' });
  res.end(text);
}

/** The answer's frames grouped into the writes the OpenAI mock would make: opening + first token, each token, closing. */
function writesOf(body: Json): string[] {
  const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : TOKENS;
  const n = Math.max(1, Math.min(TOKENS, maxTokens));
  const answer: Answer = {
    scenario: 'text',
    blocks: [{ type: 'text', pieces: Array.from({ length: n }, (_, i) => `tok${i} `) }],
    stopReason: n < TOKENS ? 'max_tokens' : 'end_turn',
    stopSequence: null,
    stopDetails: null,
  };
  const { events } = render(body, answer);
  const frames = events.map((e) => sse(e as { type: string }));
  const texts = events.flatMap((e, i) => (e.type === 'content_block_delta' && (e.delta as Json | undefined)?.type === 'text_delta' ? [i] : []));
  const first = texts[0]!;
  const last = texts.at(-1)!;
  const writes = [frames.slice(0, first + 1).join('')];
  for (const i of texts.slice(1)) writes.push(frames[i]!);
  writes.push(frames.slice(last + 1).join(''));
  return writes;
}

/** Writes `writes[0]` at once, then one write every DELAY_MS, honouring backpressure; stops if the client left. */
function stream(res: http.ServerResponse, writes: string[]): void {
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  res.once('close', () => clearTimeout(timer));
  const next = () => {
    timer = undefined;
    if (res.destroyed) return;
    if (i === writes.length - 1) {
      res.end(writes[i]);
      return;
    }
    const again = () => {
      if (DELAY_MS > 0) timer = setTimeout(next, DELAY_MS);
      else setImmediate(next);
    };
    if (res.write(writes[i++])) again();
    else res.once('drain', again);
  };
  next();
}

let answered = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/bench/requests') return sendJson(res, 200, { requests: answered });
    if (req.method !== 'POST' || req.url !== '/v1/messages') return sendJson(res, 404, errorBody('not_found_error', 'Not Found', 'req_bench'));
    const version = String(req.headers['anthropic-version'] ?? '');
    if (!(API_VERSIONS as readonly string[]).includes(version)) return sendJson(res, 400, errorBody('invalid_request_error', `anthropic-version: ${JSON.stringify(version)} is not a valid version`, 'req_bench'));
    let body: Json;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
    } catch {
      return sendJson(res, 400, errorBody('invalid_request_error', 'There was an issue with the request body: the body must be a JSON object.', 'req_bench'));
    }
    const invalid = invalidRequest(body, version, '/v1/messages');
    if (invalid !== null) return sendJson(res, 400, errorBody('invalid_request_error', invalid, 'req_bench'));
    if (body.stream !== true) return sendJson(res, 400, errorBody('invalid_request_error', 'bench mock: only streamed answers', 'req_bench'));
    answered++;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_bench' });
    stream(res, writesOf(body));
  });
});
serveMockProcess(server, values.host, Number(values.port), 'ANTHROPIC_MOCK_READY');
