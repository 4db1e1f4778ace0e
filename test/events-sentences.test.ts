// /v1/events?batch=sentence: a speech engine's subscription gets the answer a sentence at a time, over SSE and
// WebSocket alike, while another subscriber and the chat client get their usual batches.
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Events } from './support/access.js';
import { postChat, user } from './support/chat.js';
import { startJarvis, type TestJarvis } from './support/jarvis.js';
import type { ChatEvent } from '../src/events/types.js';

let jarvis: TestJarvis;
beforeAll(async () => {
  jarvis = await startJarvis({ simulator: { tokensPerSec: 400, ttftMs: 0 } });
});
afterAll(async () => {
  await jarvis.close();
});

const SENTENCE = /(?:[.!?…。！？]+["'”’)\]]*\s+|\n+)$/;
const tokenTexts = (events: ChatEvent[]) => events.filter((e) => e.type === 'chat.token').map((e) => e.data.text as string);

it('cuts token events at sentence ends, over SSE and WebSocket, and leaves default subscribers alone', async () => {
  const session = `sentences-${Date.now()}`;
  const sentences = await Events.open(jarvis.url, {}, `session_id=${session}&batch=sentence`);
  const plain = await Events.open(jarvis.url, {}, `session_id=${session}`);
  const ws = new WebSocket(`${jarvis.url.replace(/^http/, 'ws')}/v1/events?session_id=${session}&batch=sentence`);
  const wsEvents: ChatEvent[] = [];
  ws.on('message', (m: Buffer) => wsEvents.push(JSON.parse(m.toString()) as ChatEvent));
  await new Promise((resolve) => ws.once('open', resolve));
  try {
    const res = await postChat(jarvis.url, { model: 'jarvis-sim', stream: false, messages: user('Write a long essay about rivers') }, { headers: { 'x-session-id': session } });
    const answer = ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const ended = (events: ChatEvent[]) => events.some((e) => e.type === 'chat.end');
    await sentences.until(() => ended(sentences.events), 'chat.end (sentences)');
    await plain.until(() => ended(plain.events), 'chat.end (plain)');
    await new Promise<void>((resolve) => {
      const check = () => ended(wsEvents) && resolve();
      ws.on('message', check);
      check();
    });
    for (const events of [sentences.events, wsEvents]) {
      const cut = tokenTexts(events);
      expect(cut.join('')).toBe(answer);
      for (const s of cut.slice(0, -1)) expect(s).toMatch(SENTENCE);
      expect(events.at(-1)!.type).toBe('chat.end');
    }
    // The default batching is unchanged: the same text, in 75 ms batches that are not cut at sentences.
    expect(tokenTexts(plain.events).join('')).toBe(answer);
    expect(tokenTexts(plain.events)).not.toEqual(tokenTexts(sentences.events));
  } finally {
    ws.close();
    await sentences.close();
    await plain.close();
  }
});

it('refuses an unknown batch mode with a 400 naming it', async () => {
  const res = await fetch(`${jarvis.url}/v1/events?batch=words`);
  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ error: { code: 'invalid_value' } });
});
