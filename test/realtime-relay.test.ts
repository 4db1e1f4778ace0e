// The Realtime API relayed (an upstream with `realtime: native`) to the Realtime fake (fakes/realtime, proven with
// the openai SDK in realtime-fake.test.ts): frames pass unchanged both ways, audio included; Jarvis's upstream key
// replaces the client's; the client leaving closes the upstream socket; the upstream's error, close and refusal
// reach the client with their meaning; transcript deltas become the session's chat.* events; the log.
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealtimeUpstream, type RealtimeUpstream } from '../fakes/realtime/index.js';
import { orFail } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import { BusSubscriber } from './support/messages.js';
import { RtClient, type RtEvent } from './support/realtime.js';
import { makeCertificate, type TestCertificate } from './support/tls.js';

const KEY = 'sk-relay-client-alice';
const UPSTREAM_KEY = 'sk-upstream-realtime-secret';
let cert: TestCertificate;
let fake: RealtimeUpstream;
let jarvis: TestJarvis;
let dispatcher: Dispatcher;

beforeAll(async () => {
  [cert, fake] = await Promise.all([makeCertificate(), startRealtimeUpstream({ apiKey: UPSTREAM_KEY })]);
  jarvis = await startJarvis({
    apiKeys: [`alice=${KEY}`],
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    upstreams: [
      { name: 'rt', baseUrl: fake.baseURL, apiKey: UPSTREAM_KEY, models: ['gpt-realtime'], realtime: 'native' },
      { name: 'rt-badkey', baseUrl: fake.baseURL, apiKey: 'sk-not-the-upstreams-key', models: ['gpt-realtime-badkey'], realtime: 'native' },
    ],
  });
  dispatcher = getGlobalDispatcher();
  setGlobalDispatcher(new Agent({ connect: { ca: cert.cert } }));
});
afterAll(async () => {
  setGlobalDispatcher(dispatcher);
  await jarvis.close();
  await Promise.all([fake.close(), cert.remove()]);
});

/** A raw WebSocket to Jarvis, collecting every frame as received. */
async function raw(model = 'gpt-realtime', protocols: string[] = []): Promise<{ ws: WebSocket; frames: { data: Buffer; binary: boolean }[]; closed: Promise<number> }> {
  const ws = new WebSocket(`${jarvis.url.replace('https', 'wss')}/v1/realtime?model=${model}`, protocols, { ca: cert.cert, headers: protocols.length ? {} : { authorization: `Bearer ${KEY}` } });
  const frames: { data: Buffer; binary: boolean }[] = [];
  ws.on('message', (data, binary) => frames.push({ data: Buffer.from(data as Buffer), binary }));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, frames, closed };
}

describe('relay mode', () => {
  it('passes frames both ways unchanged, audio and binary included, with Jarvis\'s key in place of the client\'s', async () => {
    const before = fake.connections.length;
    const c = await raw('gpt-realtime', ['realtime', `openai-insecure-api-key.${KEY}`]);
    const up = await fake.connection(before);
    expect(up.key).toBe(UPSTREAM_KEY);
    expect(JSON.stringify(up.headers)).not.toContain(KEY);
    expect(up.model).toBe('gpt-realtime');
    const sent = [
      JSON.stringify({ type: 'session.update', session: { type: 'realtime', instructions: 'Be warm.' } }),
      JSON.stringify({ type: 'input_audio_buffer.append', audio: Buffer.alloc(3000, 7).toString('base64') }),
      JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello tokens:5' }] } }),
      JSON.stringify({ type: 'response.create' }),
    ];
    for (const s of sent) c.ws.send(s);
    const binary = Buffer.from([0, 1, 2, 250, 251]);
    c.ws.send(binary);
    await up.until((r) => r.received.length >= 5 && r.sentEvents('response.done').length === 1);
    expect(up.received.slice(0, 4).map((f) => f.text)).toEqual(sent);
    expect(up.received[4]).toMatchObject({ binary: true });
    expect(up.received[4]!.data.equals(binary)).toBe(true);
    // What the upstream sent, the client got, byte for byte and in order (audio deltas among it).
    await orFail(
      (async () => {
        while (c.frames.length < up.sent.length) await new Promise((r) => setTimeout(r, 5));
      })(),
      'every upstream frame at the client',
    );
    expect(c.frames.map((f) => f.data.toString())).toEqual(up.sent.map((f) => f.text));
    expect(up.sentEvents('response.output_audio.delta').length).toBeGreaterThan(0);
    c.ws.close();
  });

  it('through the openai SDK: a response with its transcript, published as the session\'s chat.* events, the connection logged', async () => {
    const bus = new BusSubscriber(jarvis.url, 'relay-events', { authorization: `Bearer ${KEY}` });
    await bus.connected;
    const c = new RtClient(jarvis.url, { key: KEY, model: 'gpt-realtime', ca: cert.cert, headers: { 'x-session-id': 'relay-events' } });
    await c.opened;
    c.say('Hello there tokens:6');
    const response = await c.respond();
    expect(response.status).toBe('completed');
    const transcript = c.events.filter((e) => e.type === 'response.output_audio_transcript.delta').map((e) => e.delta as string).join('');
    expect(transcript).toBe('t0 t1 t2 t3 t4 t5 ');
    const start = await bus.until((e) => e.type === 'chat.start', 'chat.start');
    const end = await bus.until((e) => e.type === 'chat.end', 'chat.end');
    expect(start.request_id).toBe(response.id);
    expect(end.request_id).toBe(response.id);
    const tokens = bus.events.filter((e) => e.type === 'chat.token').map((e) => e.data.text as string).join('');
    expect(tokens).toBe(transcript);
    c.close();
    const log = await jarvis.waitForLog((l) => /stream_end .*cleanup_done=true .*responses=1/.test(l));
    expect(log).toMatch(/stream_start .*session=relay-events .*policy=relay/);
    expect(log).toMatch(new RegExp(`realtime_response .*response_id=${response.id} status=completed`));
    expect(log).not.toContain(KEY);
    expect(log).not.toContain(UPSTREAM_KEY);
    await bus.close();
  });

  it("writes each relayed response to the usage ledger with the upstream's own usage", async () => {
    const c = new RtClient(jarvis.url, { key: KEY, model: 'gpt-realtime', ca: cert.cert, headers: { 'x-session-id': 'relay-ledger' } });
    await c.opened;
    c.say('Bill me tokens:4');
    const response = await c.respond();
    c.close();
    const usage = response.usage as { input_tokens: number; output_tokens: number };
    const res = await fetch(`${jarvis.url}/v1/usage/records?request_id=${response.id}`, { headers: { authorization: `Bearer ${KEY}` } });
    const [line] = ((await res.json()) as { data: Record<string, unknown>[] }).data;
    expect(line).toMatchObject({ api: 'realtime', key: 'alice', session: 'relay-ledger', model: 'gpt-realtime', upstream: 'rt', provider: 'openai', outcome: 'end', estimated: false, input_tokens: usage.input_tokens, output_tokens: usage.output_tokens });
  });

  it('closes the upstream socket as soon as the client leaves', async () => {
    const before = fake.connections.length;
    const c = await raw();
    const up = await fake.connection(before);
    c.ws.terminate();
    const close = await orFail(up.closed, 'the upstream socket closing');
    expect(close.by).toBe('client');
  });

  it('passes the upstream\'s error event and its close (code and reason) on to the client', async () => {
    const c = await raw();
    c.ws.send(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'scenario:error' }] } }));
    c.ws.send(JSON.stringify({ type: 'response.create' }));
    const error = await orFail(
      (async () => {
        for (;;) {
          const e = c.frames.map((f) => JSON.parse(f.data.toString()) as RtEvent).find((x) => x.type === 'error');
          if (e) return e;
          await new Promise((r) => setTimeout(r, 5));
        }
      })(),
      'the error event',
    );
    expect(error.error).toMatchObject({ type: 'invalid_request_error' });
    c.ws.send(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'bye close:4010' }] } }));
    c.ws.send(JSON.stringify({ type: 'response.create' }));
    expect(await orFail(c.closed, 'the close')).toBe(4010);
  });

  it('refuses the client\'s upgrade when the upstream refuses Jarvis\'s: 502 upstream_auth_failed', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve) => {
      const ws = new WebSocket(`${jarvis.url.replace('https', 'wss')}/v1/realtime?model=gpt-realtime-badkey`, { ca: cert.cert, headers: { authorization: `Bearer ${KEY}` } });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on('error', () => {});
    });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'upstream_auth_failed' } });
    expect(answer.body).not.toContain('sk-not-the-upstreams-key');
  });
});
