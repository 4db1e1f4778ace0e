// The upstream of scenario 9 (a tool-call rollout), a process of its own like the OpenAI mock:
//   node --import tsx bench/tool-loop-mock.ts --port 0 [--host 127.0.0.1] [--defaults '{"calls":20,"tokens":20,"delayMs":0}']
// Prints one line, `TOOL_LOOP_MOCK_READY <origin>` (an OpenAI upstream's baseUrl is the origin + /v1).
//
// POST /v1/chat/completions (streamed) answers as a model in a tool loop does: a call of the request's first tool
// while the conversation holds fewer than `calls` tool results, then a text answer of `tokens` tokens
// (bench/rollout.ts, toolLoopFrames: OpenAI's chunks, the call's id naming how many results it saw). The frames go
// out as fakes/http.ts's writePaced writes them: with `delayMs` 0 (the default) the whole answer in one write, as
// the OpenAI mock floods; else one frame every `delayMs`. GET /v1/models lists `mock-model`; GET /bench/requests
// says how many answers it has started and how many of them were calls.
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { sendJson, writePaced } from '../fakes/http.js';
import { serveMockProcess } from './mock-process.js';
import { toolLoopFrames, toolResultsIn } from './rollout.js';

export interface ToolLoopMockKnobs {
  /** Tool calls before the text answer (default 20). */
  calls?: number;
  /** Text tokens of the final answer (default 20). */
  tokens?: number;
  /** Between frames, ms (default 0: the whole answer in one write). */
  delayMs?: number;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    defaults: { type: 'string' },
  },
});
const knobs = (values.defaults ? JSON.parse(values.defaults) : {}) as ToolLoopMockKnobs;
const CALLS = knobs.calls ?? 20;
const TOKENS = knobs.tokens ?? 20;
const DELAY_MS = knobs.delayMs ?? 0;

const error = (message: string) => ({ error: { message, type: 'invalid_request_error', param: null, code: null } });

let answered = 0;
let calls = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/bench/requests') return sendJson(res, 200, { requests: answered, calls });
    if (req.method === 'GET' && req.url === '/v1/models') return sendJson(res, 200, { object: 'list', data: [{ id: 'mock-model', object: 'model', created: 0, owned_by: 'bench' }] });
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return sendJson(res, 404, error(`bench mock: no route ${req.method} ${req.url}`));
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return sendJson(res, 400, error('bench mock: the body is not JSON'));
    }
    if (body.stream !== true) return sendJson(res, 400, error('bench mock: only streamed answers'));
    answered++;
    if (toolResultsIn(body) < CALLS) calls++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    writePaced(res, toolLoopFrames(body, { calls: CALLS, tokens: TOKENS, id: `chatcmpl-loop-${answered}` }), DELAY_MS);
  });
});
serveMockProcess(server, values.host, Number(values.port), 'TOOL_LOOP_MOCK_READY');
