// Property: whatever a client POSTs to /v1/chat/completions (any JSON, near-valid chat bodies with wrong types,
// huge numbers, odd unicode, prototype-pollution keys), the answer is a well-formed success or an OpenAI-shaped
// 4xx: never a 500, never a crash, never a hang, and the server keeps serving.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { orFail, waitForIdle } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { sseData } from './support/sse.js';

// CI must be reproducible (a red run blocks a landing), so it replays one seed; local runs explore new ones and
// print the seed of any failure, which this line can then pin to replay it.
if (process.env.CI) fc.configureGlobal({ seed: 20261124 });

let jarvis: TestJarvis;
beforeAll(async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 100_000, ttftMs: 0 } });
});
afterAll(() => jarvis.close());

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', ''];
const CHAT_KEYS = ['messages', 'role', 'content', 'model', 'stream', 'max_tokens', 'n', 'temperature', 'stop', 'stream_options', 'include_usage', 'type', 'text', 'name'];
const key = fc.oneof(fc.constantFrom(...HOSTILE_KEYS, ...CHAT_KEYS), fc.string({ unit: 'binary', maxLength: 8 }));
const text = fc.string({ unit: 'binary', maxLength: 40 });

/** JSON numbers a JavaScript value cannot always hold: huge, tiny, past 2^53, negative zero, overflowing to Infinity. */
const numberText = fc.oneof(
  fc.constantFrom('0', '-0', '1', '-1', '1.5', '1e308', '-1e308', '1e400', '-1e400', '5e-324', '9007199254740993', '123456789012345678901234567890'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
);

/**
 * JSON *text*, written by hand so that `__proto__` and duplicate keys reach the server exactly as sent (an object
 * built in JavaScript and stringified could not carry them).
 */
const { json } = fc.letrec<{ json: string; leaf: string; array: string; object: string }>((tie) => ({
  json: fc.oneof({ depthSize: 'small' }, tie('leaf'), tie('array'), tie('object')),
  leaf: fc.oneof(fc.constantFrom('null', 'true', 'false'), numberText, text.map((s) => JSON.stringify(s))),
  array: fc.array(tie('json'), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
  object: fc.array(fc.tuple(key, tie('json')), { maxLength: 5 }).map((ps) => `{${ps.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
}));

/** A value of the wrong kind for whatever field it lands in. */
const junk = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(1e308, -1, 0, -0, 2 ** 53 + 1, 0.5, '', '5', 'true', true, false, null, [], {}, { __proto__: null }),
  text,
);
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/**
 * Mostly the valid thing, sometimes something of the wrong kind. At 8 to 1 about a sixth of the near-valid
 * requests pass validation and stream (31-44 of 200 in six runs); at 4 to 1 it was 16-21, close enough to the
 * assertion's floor of 10 to fail now and then.
 */
const orJunk = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: junk });

const message = fc.record(
  {
    role: orJunk(fc.constantFrom('user', 'system', 'developer', 'assistant', 'tool', 'function')),
    content: orJunk(fc.oneof(text, fc.constant(null), fc.array(fc.record({ type: orJunk(fc.constant('text')), text: orJunk(text) }, { requiredKeys: ['type'] }), { maxLength: 3 }))),
    name: opt(orJunk(text)),
  },
  { requiredKeys: ['role'] },
);

/** A valid chat request with some of its fields made wrong, plus stray fields (hostile names included). */
const nearValid = fc
  .tuple(
    fc.record(
      {
        model: orJunk(fc.constant('jarvis-sim')),
        messages: orJunk(fc.array(message, { minLength: 1, maxLength: 4 })),
        stream: orJunk(fc.boolean()),
        stream_options: orJunk(fc.record({ include_usage: orJunk(fc.boolean()) })),
        max_tokens: orJunk(fc.integer({ min: 1, max: 5 })),
        temperature: orJunk(fc.double({ min: 0, max: 2, noNaN: true })),
        n: orJunk(fc.constant(1)),
        stop: orJunk(fc.array(text, { maxLength: 4 })),
      },
      { requiredKeys: [] },
    ),
    fc.dictionary(key, junk, { maxKeys: 3 }),
  )
  // Valid messages and a small max_tokens unless replaced, so many requests get through validation and stream.
  .map(([fields, extra]) => JSON.stringify({ ...extra, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, ...fields }));

const sessionHeader = opt(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/), fc.stringMatching(/^[\x21-\x7e]{0,140}$/)));

interface Outcome {
  status: number;
  contentType: string;
  requestId: string | null;
  body: string;
}

async function post(body: string, sessionId: string | undefined): Promise<Outcome> {
  const res = await orFail(
    fetch(`${jarvis.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(sessionId !== undefined ? { 'x-session-id': sessionId } : {}) },
      body,
    }),
    'a response',
  );
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', requestId: res.headers.get('x-request-id'), body: await orFail(res.text(), 'the response body') };
}

/** The whole contract, for any request. */
function expectWellFormed(o: Outcome): void {
  expect(o.requestId).toMatch(/^req_/);
  if (o.status === 200 && o.contentType.startsWith('text/event-stream')) {
    const data = sseData(o.body);
    expect(data.at(-1)).toBe('[DONE]');
    for (const d of data.slice(0, -1)) expect(() => JSON.parse(d) as unknown).not.toThrow();
    return;
  }
  expect(o.contentType).toMatch(/^application\/json/);
  const body = JSON.parse(o.body) as Record<string, unknown>;
  if (o.status === 200) {
    expect(body).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant' } }] });
    return;
  }
  expect(o.status).toBeGreaterThanOrEqual(400);
  expect(o.status).toBeLessThan(500);
  expect(Object.keys(body)).toEqual(['error']);
  const error = body.error as Record<string, unknown>;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(error.message).toEqual(expect.stringMatching(/\S/));
  expect(error.type).toBe('invalid_request_error');
}

it('any JSON text, hostile keys included, gets a well-formed answer', async () => {
  await fc.assert(
    fc.asyncProperty(json, sessionHeader, async (body, session) => expectWellFormed(await post(body, session))),
    { numRuns: 100 },
  );
});

it('any JSON value gets a well-formed answer', async () => {
  await fc.assert(
    fc.asyncProperty(fc.jsonValue(), async (value) => expectWellFormed(await post(JSON.stringify(value) ?? 'null', undefined))),
    { numRuns: 100 },
  );
});

it('near-valid chat requests get a well-formed answer, and many of them really stream', async () => {
  let served = 0;
  await fc.assert(
    fc.asyncProperty(nearValid, sessionHeader, async (body, session) => {
      const outcome = await post(body, session);
      expectWellFormed(outcome);
      if (outcome.status === 200) served++;
    }),
    { numRuns: 200 },
  );
  // The generator is worth something only if it reaches the streaming path, not just validation.
  expect(served).toBeGreaterThan(10);
});

it('leaves the server healthy, idle and without a single internal error', async () => {
  expect((await fetch(`${jarvis.url}/healthz`)).status).toBe(200);
  await waitForIdle(jarvis.url);
  const log = await jarvis.logs();
  expect(log).not.toMatch(/ request_failed | stream_error .*code=internal_error/);
});
