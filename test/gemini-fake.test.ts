// The Gemini fake (fakes/gemini) speaks Gemini: Google's SDK (@google/genai), pointed at it, assembles from its
// stream the response it returns unstreamed, raises its ApiError with the status of each HTTP failure, reports an
// error object mid-stream as the real stream's, closes the request it aborts, counts tokens, pages through the
// models, and carries a thought signature into a Gemini 3 tool round trip, which the fake checks. On the wire,
// the fake writes what the fake says it writes (render), framed as Google frames it.
import { ApiError, GoogleGenAI, Type, type Content, type FunctionDeclaration, type GenerateContentParameters, type GenerateContentResponse, type Part } from '@google/genai';
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ERRORS,
  MODELS,
  SKIP_SIGNATURE,
  STREAM_ERROR,
  TEXT,
  THINKING,
  THINKING_TOOL,
  answerFor,
  errorBody,
  inputTokensOf,
  missingSignature,
  oneLine,
  parse,
  render,
  signatureValid,
  startGeminiUpstream,
  type GeminiUpstream,
} from '../fakes/gemini/index.js';

type Json = Record<string, unknown>;

const KEY = 'AIzaSyFakeKeyForTheGeminiFake000000000';
const G25 = 'gemini-2.5-flash';
const G3 = 'gemini-3-flash-preview';
const WEATHER: FunctionDeclaration = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: Type.OBJECT, properties: { location: { type: Type.STRING }, unit: { type: Type.STRING, enum: ['c', 'f'] } }, required: ['location'] },
};
const TIME: FunctionDeclaration = { name: 'get_time', description: 'The time in a city', parameters: { type: Type.OBJECT, properties: { location: { type: Type.STRING } } } };
const THOUGHTS = { thinkingConfig: { includeThoughts: true } };

let fake: GeminiUpstream;
beforeAll(async () => {
  fake = await startGeminiUpstream({ apiKey: KEY });
});
afterAll(() => fake.close());

const client = (opts: { apiKey?: string; retryOptions?: { attempts: number; initialDelay: number; jitter: number } } = {}) =>
  new GoogleGenAI({ apiKey: opts.apiKey ?? KEY, httpOptions: { baseUrl: fake.origin, apiVersion: 'v1beta', ...(opts.retryOptions ? { retryOptions: opts.retryOptions } : {}) } });

let tags = 0;
const tag = () => `#g${++tags}`;

/** A response as plain JSON, without the SDK's record of the HTTP response. */
function plain(r: GenerateContentResponse): Json {
  const { sdkHttpResponse: _headers, ...rest } = JSON.parse(JSON.stringify(r)) as Json;
  return rest;
}

/** Parts joined as the unary API joins them: consecutive text parts of the same kind (thought or not) become one. */
function join(parts: Part[]): Part[] {
  const out: Part[] = [];
  for (const p of parts) {
    const prev = out.at(-1);
    if (p.text !== undefined && prev?.text !== undefined && prev.thought === p.thought && prev.thoughtSignature === undefined) {
      out[out.length - 1] = { ...prev, text: prev.text + p.text, ...(p.thoughtSignature !== undefined ? { thoughtSignature: p.thoughtSignature } : {}) };
    } else out.push(p);
  }
  return out;
}

/** The chunks of an SDK stream, and the one response they add up to (the finish and usage of the last). */
async function streamed(sdk: GoogleGenAI, params: GenerateContentParameters): Promise<{ chunks: GenerateContentResponse[]; assembled: Json }> {
  const chunks: GenerateContentResponse[] = [];
  for await (const c of await sdk.models.generateContentStream(params)) chunks.push(c);
  const last = plain(chunks.at(-1)!);
  const { content: _content, ...finish } = (last.candidates as Json[])[0]!;
  const parts = join(chunks.flatMap((c) => c.candidates?.[0]?.content?.parts ?? []));
  expect(new Set(chunks.map((c) => c.responseId)).size).toBe(1);
  return { chunks, assembled: { ...last, candidates: [parts.length > 0 ? { content: { parts, role: 'model' }, ...finish } : finish] } };
}

/** A raw POST to the fake: status, headers and the body's exact text. */
async function post(model: string, method: string, body: unknown, opts: { key?: string | null; query?: string } = {}) {
  const key = opts.key === undefined ? KEY : opts.key;
  const res = await fetch(`${fake.url}/models/${model}:${method}${opts.query ?? ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-goog-api-key': key }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/**
 * A raw streamed answer read with node:http, which hands over every byte that arrived even when the connection is
 * cut (fetch's body stream, errored, drops what it had queued): the text, and whether the response ended cleanly.
 */
function rawStream(model: string, body: unknown): Promise<{ text: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${fake.url}/models/${model}:streamGenerateContent?alt=sse`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': KEY } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('error', () => undefined);
      res.on('close', () => resolve({ text, complete: res.complete }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** The chunks of a raw SSE answer, each checked for Gemini's framing: `data: <one-line JSON>` CRLF CRLF, nothing else. */
function framesOf(text: string): Json[] {
  const frames = text.split('\r\n\r\n');
  expect(frames.pop(), 'the stream ends with a complete frame').toBe('');
  return frames.map((frame) => {
    const m = /^data: (.*)$/s.exec(frame);
    expect(m, frame).not.toBeNull();
    expect(frame).not.toMatch(/[\r\n]/);
    const data = JSON.parse(m![1]!) as Json;
    expect(oneLine(data)).toBe(m![1]);
    return data;
  });
}

/** A body the fake recorded, parsed as the fake parses it. */
function parsed(body: Json): Json {
  const p = parse(body, 'GenerateContentRequest');
  if (!('request' in p)) throw new Error(JSON.stringify(p.error));
  return p.request;
}

/** What the fake says it answers to a body it recorded. */
function expected(body: Json, model: string) {
  const request = parsed(body);
  return render(request, answerFor(request, model), model);
}

/** The error an SDK call fails with. */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.fail('resolved'),
    (e: unknown) => e,
  );

/** The JSON body an ApiError for an HTTP status carries in its message. */
const bodyOf = (err: unknown) => JSON.parse((err as ApiError).message) as { error: { code: number; message: string; status: string; details?: Json[] } };

/** The requests whose body mentions `tag` anywhere: a turn of function responses carries no tag in its prompt. */
const sentWith = (t: string) => fake.requests.filter((r) => JSON.stringify(r.body).includes(t));

const user = (text: string): Content => ({ role: 'user', parts: [{ text }] });
const toolResult = (...answers: Array<[string, Json]>): Content => ({ role: 'user', parts: answers.map(([name, response]) => ({ functionResponse: { name, response } })) });

/** Each scenario's request: what it needs (tools, thoughts, a budget) to show itself. */
const SCENARIOS: Record<string, (model: string, t: string) => GenerateContentParameters> = {
  text: (model, t) => ({ model, contents: `What is the answer? ${t}` }),
  'tokens:7': (model, t) => ({ model, contents: `tokens:7 ${t}` }),
  tool: (model, t) => ({ model, contents: `Weather in Paris? ${t}`, config: { tools: [{ functionDeclarations: [WEATHER] }] } }),
  'tools-2': (model, t) => ({ model, contents: `scenario:tools-2 ${t}`, config: { tools: [{ functionDeclarations: [WEATHER, TIME] }] } }),
  thinking: (model, t) => ({ model, contents: `scenario:thinking ${t}`, config: THOUGHTS }),
  'thinking-tool': (model, t) => ({ model, contents: `scenario:thinking-tool ${t}`, config: { ...THOUGHTS, tools: [{ functionDeclarations: [WEATHER] }] } }),
  'max-tokens': (model, t) => ({ model, contents: `scenario:max-tokens ${t}`, config: { maxOutputTokens: 5 } }),
  safety: (model, t) => ({ model, contents: `scenario:safety ${t}` }),
  recitation: (model, t) => ({ model, contents: `scenario:recitation ${t}` }),
  'malformed-call': (model, t) => ({ model, contents: `scenario:malformed-call ${t}`, config: { tools: [{ functionDeclarations: [WEATHER] }] } }),
  'no-usage': (model, t) => ({ model, contents: `scenario:no-usage ${t}` }),
};

describe.each([G25, G3])('the SDK against the fake, %s', (model) => {
  const gemini3 = model === G3;

  describe.each(Object.keys(SCENARIOS))('scenario %s', (name) => {
    it('streams the response it returns unstreamed, in the documented shape', async () => {
      const t = tag();
      const params = SCENARIOS[name]!(model, t);
      const sdk = client();
      const { chunks, assembled } = await streamed(sdk, params);
      const created = await sdk.models.generateContent(params);
      expect(assembled).toEqual(plain(created));
      expect(created).toMatchObject({ modelVersion: model, responseId: expect.stringMatching(/^[\w-]{23}$/) });

      const cand = created.candidates![0]!;
      const parts = cand.content?.parts ?? [];
      const usage = created.usageMetadata;
      const [rec] = fake.requestsFor(t);
      const prompt = inputTokensOf(parsed(rec!.body as Json));
      if (name !== 'no-usage') expect(usage).toMatchObject({ promptTokenCount: prompt, promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }] });
      if (usage) expect(usage.totalTokenCount).toBe(prompt + (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0));
      const thinks = gemini3 || name.startsWith('thinking');
      if (usage) expect(usage.thoughtsTokenCount).toBe(thinks ? 4 : undefined);
      const signatures = parts.map((p) => p.thoughtSignature);
      const calls = created.functionCalls ?? [];
      for (const c of calls) expect(c.id).toBeUndefined();

      switch (name) {
        case 'text':
        case 'no-usage':
          expect({ text: created.text, finish: cand.finishReason, parts: parts.length }).toEqual({ text: 'The answer is 42.', finish: 'STOP', parts: 1 });
          // Gemini 3 signs its text answers, on the last part; 2.5 does not unless it was asked to think.
          expect(signatures.map((s) => s !== undefined)).toEqual([gemini3]);
          if (gemini3) expect(signatureValid('', signatures[0])).toBe(true);
          if (name === 'text') expect(usage?.candidatesTokenCount).toBe(TEXT.length);
          else expect(usage).toBeUndefined();
          // In the stream the signature rides on an empty text part of its own, in the last chunk.
          if (gemini3) expect(chunks.at(-1)!.candidates![0]!.content!.parts).toEqual([{ text: '', thoughtSignature: signatures[0] }]);
          break;
        case 'tokens:7':
          expect({ text: created.text, tokens: usage?.candidatesTokenCount }).toEqual({ text: 't0 t1 t2 t3 t4 t5 t6 ', tokens: 7 });
          break;
        case 'tool':
        case 'tools-2':
        case 'thinking-tool': {
          expect(cand.finishReason).toBe('STOP');
          expect(calls).toEqual(name === 'tools-2' ? [{ name: 'get_weather', args: { location: 'Paris' } }, { name: 'get_time', args: { location: 'Tokyo', unit: 'c' } }] : [{ name: 'get_weather', args: { location: 'Paris' } }]);
          // The calls arrive whole, in one chunk: parallel calls side by side.
          expect(chunks.filter((c) => c.functionCalls !== undefined)).toHaveLength(1);
          const callParts = parts.filter((p) => p.functionCall !== undefined);
          // Only the first call of a turn is signed: always by Gemini 3, by 2.5 when it thought.
          const signed = gemini3 || name === 'thinking-tool';
          expect(callParts.map((p) => p.thoughtSignature !== undefined)).toEqual(name === 'tools-2' ? [signed, false] : [signed]);
          if (signed) expect(signatureValid('get_weather', callParts[0]!.thoughtSignature)).toBe(true);
          const thoughts = parts.filter((p) => p.thought === true);
          expect(thoughts).toEqual(name === 'thinking-tool' ? [{ text: THINKING_TOOL.join(''), thought: true }] : []);
          expect(usage?.candidatesTokenCount).toBe(calls.length);
          break;
        }
        case 'thinking': {
          expect(parts.map((p) => (p.thought ? 'thought' : 'text'))).toEqual(['thought', 'text']);
          expect(parts[0]).toEqual({ text: THINKING.join(''), thought: true });
          expect(created.text).toBe('The answer is 42.');
          expect(signatureValid('', parts[1]!.thoughtSignature)).toBe(true);
          // Thought summaries stream first, a part each; the first chunk already reports the thoughts' tokens.
          expect(chunks.slice(0, THINKING.length).map((c) => c.candidates![0]!.content!.parts)).toEqual(THINKING.map((text) => [{ text, thought: true }]));
          expect(chunks[0]!.usageMetadata).toMatchObject({ thoughtsTokenCount: 4 });
          expect(chunks[0]!.usageMetadata!.candidatesTokenCount).toBeUndefined();
          break;
        }
        case 'max-tokens':
          expect({ finish: cand.finishReason, text: created.text, tokens: usage?.candidatesTokenCount }).toEqual({ finish: 'MAX_TOKENS', text: 't0 t1 t2 t3 t4 ', tokens: 5 });
          break;
        case 'safety':
          expect({ finish: cand.finishReason, text: created.text }).toEqual({ finish: 'SAFETY', text: 'Here is how' });
          expect(cand.safetyRatings).toContainEqual({ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true });
          // The blocked candidate's last chunk has no content.
          expect(chunks.at(-1)!.candidates![0]!.content).toBeUndefined();
          break;
        case 'recitation':
          expect({ finish: cand.finishReason, text: created.text }).toEqual({ finish: 'RECITATION', text: 'It was the best of times' });
          expect(cand.citationMetadata?.citations?.[0]?.uri).toMatch(/^https:/);
          break;
        case 'malformed-call':
          expect({ finish: cand.finishReason, content: cand.content, text: created.text, calls: created.functionCalls }).toEqual({ finish: 'MALFORMED_FUNCTION_CALL', content: undefined, text: undefined, calls: undefined });
          break;
      }
    });

    it('writes on the wire what it says it writes, framed as Gemini frames it', async () => {
      const t = tag();
      const params = SCENARIOS[name]!(model, t);
      await client().models.generateContent(params);
      const body = fake.requestsFor(t)[0]!.body as Json;
      const want = expected(body, model);
      const unary = await post(model, 'generateContent', body);
      expect(unary.status).toBe(200);
      expect(unary.headers.get('content-type')).toBe('application/json; charset=UTF-8');
      // Google's unary JSON: pretty-printed, two spaces, a final newline.
      expect(unary.text).toBe(`${JSON.stringify(want.response, null, 2)}\n`);
      const stream = await post(model, 'streamGenerateContent', body, { query: '?alt=sse' });
      expect(stream.headers.get('content-type')).toBe('text/event-stream');
      const frames = framesOf(stream.text);
      expect(frames).toEqual(want.chunks);
      // Only the last chunk finishes; every chunk is one candidate, index 0.
      const finishes = frames.map((f) => ((f.candidates as Json[])[0] as Json).finishReason);
      expect(finishes.slice(0, -1).every((f) => f === undefined)).toBe(true);
      expect(finishes.at(-1)).toEqual(expect.any(String));
      for (const f of frames) expect((f.candidates as Json[]).map((c) => c.index)).toEqual([0]);
      if (name === 'malformed-call') expect(frames.at(-1)).toMatchObject({ candidates: [{ finishReason: 'MALFORMED_FUNCTION_CALL', finishMessage: expect.stringMatching(/^Malformed function call: /) }] });
    });
  });

  it('answers without thought parts unless includeThoughts asks, counting the thoughts all the same', async () => {
    const t = tag();
    const plainAnswer = await client().models.generateContent({ model, contents: `scenario:thinking ${t}` });
    expect(plainAnswer.candidates![0]!.content!.parts!.some((p) => p.thought)).toBe(false);
    expect(plainAnswer.usageMetadata?.thoughtsTokenCount).toBe(4);
    const shown = await client().models.generateContent({ model, contents: `scenario:thinking ${t}`, config: THOUGHTS });
    expect(shown.candidates![0]!.content!.parts![0]).toEqual({ text: THINKING.join(''), thought: true });
    expect(shown.usageMetadata).toEqual(plainAnswer.usageMetadata);
  });

  it('answers function responses in a round trip, quoting them', async () => {
    const t = tag();
    const config = { tools: [{ functionDeclarations: [WEATHER] }] };
    const first = await client().models.generateContent({ model, contents: `Weather in Paris? ${t}`, config });
    const call = first.candidates![0]!.content!;
    const second: GenerateContentParameters = { model, contents: [user(`Weather in Paris? ${t}`), call, toolResult(['get_weather', { temperature: 21 }])], config };
    const answer = await client().models.generateContent(second);
    expect(answer.text).toBe('The tool says: {"temperature":21}.');
    expect(answer.functionCalls).toBeUndefined();
    expect((await streamed(client(), second)).assembled).toEqual(plain(answer));
    expect(sentWith(t).map((r) => r.scenario)).toEqual(['tool', 'tool-result', 'tool-result']);
    // The prompt of a function response turn is its responses' payloads.
    expect(sentWith(t)[1]!.prompt).toBe('{"temperature":21}');
  });

  it('gives the same conversation the same response id, another conversation another', async () => {
    const params = SCENARIOS.tool!(model, 'same');
    const [a, b] = await Promise.all([client().models.generateContent(params), client().models.generateContent(params)]);
    expect(plain(a)).toEqual(plain(b));
    const c = await client().models.generateContent(SCENARIOS.tool!(model, 'other'));
    expect(c.responseId).not.toBe(a.responseId);
  });
});

describe('Gemini 3 thought signatures in a tool round trip', () => {
  const config = { tools: [{ functionDeclarations: [WEATHER, TIME] }] };

  it("passes with the chat's own history, which keeps the signature (streamed first turn, unary second)", async () => {
    const t = tag();
    const chat = client().chats.create({ model: G3, config });
    const chunks: GenerateContentResponse[] = [];
    for await (const c of await chat.sendMessageStream({ message: `Weather in Paris? ${t}` })) chunks.push(c);
    expect(chunks.flatMap((c) => c.functionCalls ?? [])).toEqual([{ name: 'get_weather', args: { location: 'Paris' } }]);
    const answer = await chat.sendMessage({ message: { functionResponse: { name: 'get_weather', response: { temperature: 21 } } } });
    expect(answer.text).toBe('The tool says: {"temperature":21}.');
    // What the SDK sent back: the call part, with the signature the fake issued for it.
    const sent = sentWith(t)[1]!.body as { contents: Content[] };
    const callPart = sent.contents[1]!.parts![0]!;
    expect(callPart.functionCall).toEqual({ name: 'get_weather', args: { location: 'Paris' } });
    expect(signatureValid('get_weather', callPart.thoughtSignature)).toBe(true);
    expect(chat.getHistory().map((c) => c.role)).toEqual(['user', 'model', 'user', 'model']);
  });

  it('passes for parallel calls, where only the first call is signed, answered in one turn', async () => {
    const t = tag();
    const chat = client().chats.create({ model: G3, config });
    const calls = await chat.sendMessage({ message: `scenario:tools-2 ${t}` });
    expect(calls.functionCalls?.map((c) => c.name)).toEqual(['get_weather', 'get_time']);
    const answer = await chat.sendMessage({
      message: [{ functionResponse: { name: 'get_time', response: { time: '10:00' } } }, { functionResponse: { name: 'get_weather', response: { temperature: 21 } } }],
    });
    expect(answer.text).toBe('The tool says: {"time":"10:00"}, {"temperature":21}.');
  });

  describe('a hand-built history', () => {
    const history = (callPart: Part, model = G3): GenerateContentParameters => ({
      model,
      contents: [user(`Weather in Paris? ${tag()}`), { role: 'model', parts: [callPart] }, toolResult(['get_weather', { temperature: 21 }])],
      config,
    });
    const call = { functionCall: { name: 'get_weather', args: { location: 'Paris' } } };

    it('without the signature is the 400 Gemini 3 answers, naming the call and its position', async () => {
      const err = await failure(client().models.generateContent(history(call)));
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      expect(bodyOf(err)).toEqual(errorBody(missingSignature('get_weather', 2)));
      expect(bodyOf(err).error.message).toMatch(/^Function call is missing a thought_signature in functionCall parts\..*function call `default_api:get_weather` , position 2\./);
      // Streamed, the same refusal, before any chunk.
      expect(((await failure(client().models.generateContentStream(history(call)))) as ApiError).status).toBe(400);
    });

    it('passes with the documented skip value, or on Gemini 2.5, which does not check', async () => {
      expect((await client().models.generateContent(history({ ...call, thoughtSignature: SKIP_SIGNATURE }))).text).toBe('The tool says: {"temperature":21}.');
      expect((await client().models.generateContent(history(call, G25))).text).toBe('The tool says: {"temperature":21}.');
    });

    it('with a signature the fake did not issue, or one for another call, is "Corrupted thought signature."', async () => {
      const t = tag();
      const first = await client().models.generateContent({ model: G3, contents: `scenario:tools-2 ${t}`, config });
      const [weather, time] = first.candidates![0]!.content!.parts!;
      for (const sig of [`${weather!.thoughtSignature!.slice(0, -6)}AAAAAA`, 'c2lnbmF0dXJl']) {
        const err = await failure(client().models.generateContent(history({ ...call, thoughtSignature: sig })));
        expect(bodyOf(err).error).toEqual({ code: 400, message: 'Corrupted thought signature.', status: 'INVALID_ARGUMENT' });
      }
      // The weather call's signature moved onto the time call.
      const moved: GenerateContentParameters = {
        model: G3,
        contents: [user(`scenario:tools-2 ${t}`), { role: 'model', parts: [{ ...time!, thoughtSignature: weather!.thoughtSignature }, { functionCall: weather!.functionCall }] }, toolResult(['get_time', {}], ['get_weather', {}])],
        config,
      };
      expect(bodyOf(await failure(client().models.generateContent(moved))).error.message).toBe('Corrupted thought signature.');
    });

    it('answered with fewer responses than calls, or a response to no call, is a 400', async () => {
      const t = tag();
      const first = await client().models.generateContent({ model: G3, contents: `scenario:tools-2 ${t}`, config });
      const turn = first.candidates![0]!.content!;
      const err = await failure(client().models.generateContent({ model: G3, contents: [user(`scenario:tools-2 ${t}`), turn, toolResult(['get_weather', {}])], config }));
      expect(bodyOf(err).error).toMatchObject({
        code: 400,
        status: 'INVALID_ARGUMENT',
        message: 'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
      });
      const orphan = await failure(client().models.generateContent({ model: G25, contents: [user(t), toolResult(['get_weather', {}])] }));
      expect(bodyOf(orphan).error.message).toBe('Please ensure that function response turn comes immediately after a function call turn.');
      const stray = await failure(client().models.generateContent({ model: G3, contents: [user(`scenario:tools-2 ${t}`), turn, toolResult(['get_weather', {}], ['get_date', {}])], config }));
      expect(bodyOf(stray).error.message).toMatch(/^Please ensure that each function response part answers a function call part/);
    });
  });
});

describe('usage and countTokens', () => {
  it('countTokens counts the tokens generateContent reports for the same contents', async () => {
    const contents = [user(`How is the weather in Paris today? ${tag()}`)];
    const counted = await client().models.countTokens({ model: G25, contents });
    const answer = await client().models.generateContent({ model: G25, contents });
    expect(counted.totalTokens).toBe(answer.usageMetadata?.promptTokenCount);
    expect(counted.totalTokens).toBeGreaterThan(0);
    // The REST form that counts a whole request: system instruction and tools included.
    const whole = { model: `models/${G25}`, contents, systemInstruction: { parts: [{ text: 'Be brief.' }] }, tools: [{ functionDeclarations: [WEATHER] }] };
    const res = await post(G25, 'countTokens', { generateContentRequest: whole });
    expect(JSON.parse(res.text)).toEqual({ totalTokens: inputTokensOf(whole), promptTokensDetails: [{ modality: 'TEXT', tokenCount: inputTokensOf(whole) }] });
    expect(inputTokensOf(whole)).toBeGreaterThan(counted.totalTokens!);
  });

  it('reports cached prompt tokens when the prompt says cached:<n>', async () => {
    const answer = await client().models.generateContent({ model: G25, contents: `cached:3 and more words to make the prompt long ${tag()}` });
    expect(answer.usageMetadata).toMatchObject({ cachedContentTokenCount: 3, cacheTokensDetails: [{ modality: 'TEXT', tokenCount: 3 }] });
    const chunks: GenerateContentResponse[] = [];
    for await (const c of await client().models.generateContentStream({ model: G25, contents: `cached:3 and more words to make the prompt long ${tag()}` })) chunks.push(c);
    expect(chunks.every((c) => c.usageMetadata?.cachedContentTokenCount === 3)).toBe(true);
  });

  it('reports cumulative usage in every chunk', async () => {
    const chunks: GenerateContentResponse[] = [];
    for await (const c of await client().models.generateContentStream({ model: G25, contents: tag() })) chunks.push(c);
    expect(chunks.map((c) => c.usageMetadata?.candidatesTokenCount)).toEqual([1, 2, 3, 4]);
    expect(chunks.map((c) => c.text)).toEqual(TEXT);
  });
});

describe('HTTP errors', () => {
  const cases: Array<[string, number, string]> = [
    ['http-400', 400, 'INVALID_ARGUMENT'],
    ['http-401', 401, 'UNAUTHENTICATED'],
    ['http-403', 403, 'PERMISSION_DENIED'],
    ['http-404', 404, 'NOT_FOUND'],
    ['http-429', 429, 'RESOURCE_EXHAUSTED'],
    ['http-500', 500, 'INTERNAL'],
    ['http-503', 503, 'UNAVAILABLE'],
  ];
  describe.each([false, true])('stream: %s', (stream) => {
    it.each(cases)('%s is a %i %s, raised as ApiError with Google’s body, not retried by default', async (scenario, status, code) => {
      const t = tag();
      const params = { model: G25, contents: `scenario:${scenario} ${t}` };
      const err = await failure(stream ? client().models.generateContentStream(params) : client().models.generateContent(params));
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(status);
      expect(bodyOf(err)).toEqual(errorBody(ERRORS[scenario]!));
      expect(bodyOf(err).error.status).toBe(code);
      expect(fake.requestsFor(t)).toHaveLength(1);
    });
  });

  it('a 429 says when to retry in RetryInfo, and names the quota in QuotaFailure', async () => {
    const err = await failure(client().models.generateContent({ model: G25, contents: `scenario:http-429 ${tag()}` }));
    const details = bodyOf(err).error.details!;
    expect(details).toContainEqual({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' });
    expect(details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.QuotaFailure')).toMatchObject({ violations: [{ quotaMetric: expect.any(String), quotaId: expect.any(String) }] });
  });

  it.each([
    ['http-429', 3],
    ['http-503', 3],
    ['http-400', 1],
  ])('with retryOptions the SDK retries %s as its status says (%i requests)', async (scenario, requests) => {
    const t = tag();
    const sdk = client({ retryOptions: { attempts: 3, initialDelay: 0.001, jitter: 0 } });
    const err = await failure(sdk.models.generateContent({ model: G25, contents: `scenario:${scenario} ${t}` }));
    expect(err).toBeInstanceOf(ApiError);
    expect(fake.requestsFor(t)).toHaveLength(requests);
  });

  it('as Google writes them: pretty-printed JSON, charset UTF-8', async () => {
    const res = await post(G25, 'generateContent', { contents: [user('scenario:http-503')] });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    expect(res.text).toBe(`{\n  "error": {\n    "code": 503,\n    "message": "The model is overloaded. Please try again later.",\n    "status": "UNAVAILABLE"\n  }\n}\n`);
  });

  it('a wrong key is a 400 API_KEY_INVALID; no key a 403; the key may come as ?key=', async () => {
    const t = tag();
    const err = await failure(client({ apiKey: 'AIzaWrong' }).models.generateContent({ model: G25, contents: t }));
    expect((err as ApiError).status).toBe(400);
    expect(bodyOf(err).error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.' });
    expect(bodyOf(err).error.details![0]).toMatchObject({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' });
    expect(fake.requestsFor(t)).toHaveLength(1);
    const none = await post(G25, 'generateContent', { contents: [user('hi')] }, { key: null });
    expect(none.status).toBe(403);
    expect(JSON.parse(none.text)).toMatchObject({ error: { code: 403, status: 'PERMISSION_DENIED' } });
    const query = await post(G25, 'generateContent', { contents: [user('hi')] }, { key: null, query: `?key=${KEY}` });
    expect(query.status).toBe(200);
    // The SDK sends its key in x-goog-api-key.
    await client().models.generateContent({ model: G25, contents: t });
    expect(fake.requestsFor(t)[1]!.headers['x-goog-api-key']).toBe(KEY);
  });
});

describe('streams that fail or are cut', () => {
  it('an error object mid-stream fails the SDK stream with ApiError 500, after the text before it, not retried', async () => {
    const t = tag();
    const texts: string[] = [];
    const err = await failure(
      (async () => {
        for await (const c of await client().models.generateContentStream({ model: G25, contents: `scenario:error-mid ${t}` })) texts.push(c.text ?? '');
      })(),
    );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(500);
    // The SDK's message for an error chunk: the status, then the chunk as it came.
    expect((err as ApiError).message).toBe(`got status: INTERNAL. ${JSON.stringify(STREAM_ERROR)}`);
    expect(texts.join('')).toBe('Hello there and');
    expect(fake.requestsFor(t)).toHaveLength(1);
  });

  it('without alt=sse, streams one JSON array of the same chunks', async () => {
    const body = { contents: [user(`scenario:thinking ${tag()}`)], generationConfig: THOUGHTS };
    const res = await post(G3, 'streamGenerateContent', body);
    expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    expect(JSON.parse(res.text)).toEqual(expected(body, G3).chunks);
    expect(framesOf((await post(G3, 'streamGenerateContent', body, { query: '?alt=sse' })).text)).toEqual(JSON.parse(res.text));
  });

  it('writes the error as a data frame of its own, then ends the response; unstreamed, it is a 500', async () => {
    const res = await post(G25, 'streamGenerateContent', { contents: [user('scenario:error-mid')] }, { query: '?alt=sse' });
    expect(res.status).toBe(200);
    const frames = framesOf(res.text);
    expect(frames.at(-1)).toEqual(STREAM_ERROR);
    expect(frames.some((f) => (f.candidates as Json[] | undefined)?.[0]?.finishReason !== undefined)).toBe(false);
    const err = await failure(client().models.generateContent({ model: G25, contents: `scenario:error-mid ${tag()}` }));
    expect((err as ApiError).status).toBe(500);
  });

  it('a cut stream fails the SDK stream with a network error, not an ApiError, after the chunks before it', async () => {
    const t = tag();
    const texts: string[] = [];
    const err = await failure(
      (async () => {
        for await (const c of await client().models.generateContentStream({ model: G25, contents: `scenario:cut ${t}` })) texts.push(c.text ?? '');
      })(),
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApiError);
    // What the SDK had read before the cut (fetch drops chunks it had not handed over when the body errors).
    expect(['Hello', ' there'].slice(0, texts.length)).toEqual(texts);
    await fake.requestsFor(t)[0]!.closed;
    // On the wire: two whole chunks, no finish, and the chunked body never ends.
    const raw = await rawStream(G25, { contents: [user('scenario:cut')] });
    expect(raw.complete).toBe(false);
    expect(framesOf(raw.text).map((f) => ((f.candidates as Json[])[0] as { content: { parts: Part[] } }).content.parts)).toEqual([[{ text: 'Hello' }], [{ text: ' there' }]]);
    // Unstreamed: the connection closes without an answer.
    expect(await failure(client().models.generateContent({ model: G25, contents: `scenario:cut ${tag()}` }))).not.toBeInstanceOf(ApiError);
  });

  it('aborting mid-stream (config.abortSignal) closes the request at the fake', async () => {
    const t = tag();
    const ac = new AbortController();
    let chunks = 0;
    const err = await failure(
      (async () => {
        const stream = await client().models.generateContentStream({ model: G25, contents: `tokens:500 delay:20 ${t}`, config: { abortSignal: ac.signal } });
        for await (const _ of stream) {
          chunks++;
          ac.abort();
        }
      })(),
    );
    expect((err as Error).name).toBe('AbortError');
    // Chunks that arrived in the same read as the first may still be handed over; the stream was cut all the same.
    expect(chunks).toBeGreaterThanOrEqual(1);
    expect(chunks).toBeLessThan(500);
    const [rec] = fake.requestsFor(t);
    await rec!.closed;
    expect(rec!.clientClosed).toBe(true);
    expect(fake.requestsFor(t)).toHaveLength(1);
  });
});

describe('models', () => {
  it('lists the models, a page at a time when asked, counting the requests', async () => {
    const before = fake.modelListRequests;
    const all: string[] = [];
    for await (const m of await client().models.list()) all.push(m.name!);
    expect(all).toEqual(MODELS.map((m) => `models/${m}`));
    expect(fake.modelListRequests).toBe(before + 1);

    const pager = await client().models.list({ config: { pageSize: 1 } });
    expect(pager.page.map((m) => m.name)).toEqual(['models/gemini-3-pro-preview']);
    expect(pager.hasNextPage()).toBe(true);
    const paged: string[] = [];
    for await (const m of pager) paged.push(m.name!);
    expect(paged).toEqual(all);
    expect(fake.modelListRequests).toBe(before + 1 + 3);

    const res = await fetch(`${fake.url}/models?pageSize=2`, { headers: { 'x-goog-api-key': KEY } });
    const page = (await res.json()) as { models: Json[]; nextPageToken?: string };
    expect(page.models.map((m) => m.name)).toEqual(['models/gemini-3-pro-preview', 'models/gemini-3-flash-preview']);
    expect(page.nextPageToken).toEqual(expect.any(String));
    const rest = (await (await fetch(`${fake.url}/models?pageSize=2&pageToken=${page.nextPageToken}`, { headers: { 'x-goog-api-key': KEY } })).json()) as Json;
    expect(rest).toEqual({ models: [expect.objectContaining({ name: 'models/gemini-2.5-flash' })] });
  });

  it('gets one model, as the SDK reads it; an unknown one is a 404', async () => {
    const model = await client().models.get({ model: G3 });
    expect(model).toMatchObject({
      name: `models/${G3}`,
      displayName: 'Gemini 3 Flash Preview',
      inputTokenLimit: 1_048_576,
      outputTokenLimit: 65_536,
      supportedActions: expect.arrayContaining(['generateContent', 'countTokens']),
      thinking: true,
    });
    const err = await failure(client().models.get({ model: 'gemini-none' }));
    expect((err as ApiError).status).toBe(404);
  });
});

describe('validation, as the proto parse and the API check a request', () => {
  const SCHEMA_PATH = 'tools[0].function_declarations[0].parameters';

  it('an unknown field is a 400 naming it and where, in the SDK too (extraBody)', async () => {
    const t = tag();
    const err = await failure(client().models.generateContent({ model: G25, contents: t, config: { httpOptions: { extraBody: { generationConfig: { max_tokens: 5 } } } } }));
    expect((err as ApiError).status).toBe(400);
    expect(bodyOf(err).error).toEqual({
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: `Invalid JSON payload received. Unknown name "max_tokens" at 'generation_config': Cannot find field.`,
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.BadRequest',
          fieldViolations: [{ field: 'generation_config', description: `Invalid JSON payload received. Unknown name "max_tokens" at 'generation_config': Cannot find field.` }],
        },
      ],
    });
    // Recorded as sent, all the same.
    expect(fake.requestsFor(t)[0]!.body.generationConfig).toEqual({ max_tokens: 5 });
  });

  it('JSON Schema keywords in a function’s parameters are each a violation, at its path (map entries by index)', async () => {
    const parameters = {
      type: 'object',
      properties: { location: { type: 'string', minLength: 1 }, tags: { type: 'array', items: { type: 'string', const: 'x' } }, when: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null', $ref: '#/x' }] } },
      additionalProperties: false,
      $schema: 'http://json-schema.org/draft-07/schema#',
    };
    const res = await post(G25, 'generateContent', { contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'f', description: 'd', parameters }] }] });
    expect(res.status).toBe(400);
    const { error } = JSON.parse(res.text) as { error: { message: string; details: Array<{ fieldViolations: Json[] }> } };
    const lines = [
      `Invalid JSON payload received. Unknown name "const" at '${SCHEMA_PATH}.properties[1].value.items': Cannot find field.`,
      `Invalid JSON payload received. Unknown name "$ref" at '${SCHEMA_PATH}.properties[2].value.any_of[1]': Cannot find field.`,
      `Invalid JSON payload received. Unknown name "additionalProperties" at '${SCHEMA_PATH}': Cannot find field.`,
      `Invalid JSON payload received. Unknown name "$schema" at '${SCHEMA_PATH}': Cannot find field.`,
    ];
    expect(error.message).toBe(lines.join('\n'));
    expect(error.details[0]!.fieldViolations.map((v) => v.field)).toEqual([`${SCHEMA_PATH}.properties[1].value.items`, `${SCHEMA_PATH}.properties[2].value.any_of[1]`, SCHEMA_PATH, SCHEMA_PATH]);
  });

  it('takes snake_case and camelCase, types in any case, a single content for a list', async () => {
    const body = {
      contents: { role: 'user', parts: [{ text: 'scenario:thinking' }] },
      system_instruction: { parts: [{ text: 'Be brief.' }] },
      tools: [{ function_declarations: [{ name: 'f', description: 'd', parameters: { type: 'object', properties: { a: { type: 'STRING' } }, property_ordering: ['a'] } }] }],
      tool_config: { function_calling_config: { mode: 'none' } },
      generation_config: { max_output_tokens: 64, thinking_config: { include_thoughts: true, thinking_level: 'low' } },
    };
    const res = await post(G25, 'generateContent', body);
    expect(res.status).toBe(200);
    const answer = JSON.parse(res.text) as { candidates: Array<{ content: { parts: Part[] } }> };
    // Mode NONE: no call; include_thoughts read: the thought summary shown.
    expect(answer.candidates[0]!.content.parts.map((p) => Boolean(p.thought))).toEqual([true, false]);
  });

  it.each([
    ['an unknown enum value', { contents: [user('hi')], toolConfig: { functionCallingConfig: { mode: 'SOMETIMES' } } }, `Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "SOMETIMES"`],
    ['a schema type Gemini lacks', { contents: [user('hi')], tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'tuple' } }] }] }, `Invalid value at '${SCHEMA_PATH}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "tuple"`],
    ['a system instruction as a string', { contents: [user('hi')], systemInstruction: 'Be brief.' }, `Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), "Be brief."`],
    ['an unknown top-level field', { contents: [user('hi')], messages: [] }, 'Invalid JSON payload received. Unknown name "messages": Cannot find field.'],
    ['an unknown thinkingConfig field', { contents: [user('hi')], generationConfig: { thinkingConfig: { budget_tokens: 1024 } } }, `Invalid JSON payload received. Unknown name "budget_tokens" at 'generation_config.thinking_config': Cannot find field.`],
    ['no contents', { generationConfig: {} }, '* GenerateContentRequest.contents: contents is not specified\n'],
    ['a role Gemini lacks', { contents: [{ role: 'assistant', parts: [{ text: 'hi' }] }] }, 'Please use a valid role: user, model.'],
    ['an empty turn', { contents: [{ role: 'user', parts: [] }] }, '* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n'],
  ])('%s is a 400 INVALID_ARGUMENT', async (_name, body, message) => {
    const res = await post(G25, 'generateContent', body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT', message } });
  });

  it('records what was sent: the system instruction, the generation config, the path', async () => {
    const t = tag();
    await client().models.generateContent({ model: G25, contents: t, config: { systemInstruction: 'Be brief.', temperature: 0.5 } });
    const [rec] = fake.requestsFor(t);
    expect(rec).toMatchObject({ method: 'POST', path: `/v1beta/models/${G25}:generateContent`, scenario: 'text', prompt: t, clientClosed: false });
    expect(rec!.body).toMatchObject({ systemInstruction: { parts: [{ text: 'Be brief.' }], role: 'user' }, generationConfig: { temperature: 0.5 } });
  });
});
