// What Jarvis promises on any Redis (one server, a Sentinel set, a cluster), checked over two instances on it.
import { expect } from 'vitest';
import { chat, orFail, pollUntil, sessionId, type JarvisProcess } from './cluster.js';
import { forEachSseBlock, parseSseBlock } from './sse.js';

export const bearer = (entry: string) => ({ authorization: `Bearer ${entry.slice(entry.indexOf('=') + 1)}` });
const LONG = 'Long essay about the history of clocks';

/**
 * The four checks of a highly available Redis (issue 30) over two instances, with one key's quota
 * (JARVIS_KEY_RPM=3): barge-in across instances, events with replay, quotas, a stored response.
 */
export async function checks(i1: JarvisProcess, i2: JarvisProcess, key: string): Promise<void> {
  const auth = bearer(key);
  // Barge-in: B on instance 2 supersedes A on instance 1.
  const session = sessionId('sen');
  const a = chat(i1, LONG, { session, headers: auth });
  await orFail(a.firstToken, "A's first token");
  const b = chat(i2, '2+2?', { session, headers: auth });
  const [ra, rb] = await orFail(Promise.all([a.result, b.result]), 'both answers');
  expect(ra.finishReason).toBe('cancelled');
  expect(rb.finishReason).toBe('stop');

  // Events: the session's events, written by instance 1 and 2, replayed from the start on instance 2.
  const events = await orFail(replay(i2, session, auth, 'chat.end'), 'the replayed events');
  expect(events.filter((t) => t === 'chat.start')).toHaveLength(2);
  expect(events).toContain('chat.cancelled');

  // A stored response made on instance 1 is read on instance 2.
  const made = await fetch(`${i1.url}/v1/responses`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'jarvis-sim', input: 'Hi' }) });
  expect(made.status).toBe(200);
  const { id } = (await made.json()) as { id: string };
  // Stored as the answer settles, beside sending it: the other instance reads it a moment later at most.
  await pollUntil(async () => ((await fetch(`${i2.url}/v1/responses/${id}`, { headers: auth })).status === 200 ? true : undefined), 'the response read on instance 2', 5000);

  // Quotas: three requests a minute for the key across both instances; the fourth is refused.
  const fourth = await fetch(`${i1.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'jarvis-sim', messages: [{ role: 'user', content: 'Hi' }] }) });
  expect(fourth.status).toBe(429);
}

/** Event types of a session replayed from its first event, once one of type `until` has come. */
export async function replay(proc: JarvisProcess, session: string, headers: Record<string, string>, until: string): Promise<string[]> {
  return pollUntil(async () => {
    const controller = new AbortController();
    const types: string[] = [];
    const res = await fetch(`${proc.url}/v1/events?session_id=${session}&since=0`, { headers, signal: controller.signal });
    let done = false;
    await forEachSseBlock(res.body!, (block) => {
      const { data, comments } = parseSseBlock(block);
      if (data) types.push((JSON.parse(data) as { type: string }).type);
      // The replay is over once the subscription says it is live.
      if (comments.includes(': connected')) {
        done = true;
        controller.abort();
      }
    }).catch(() => {});
    return done && types.includes(until) ? types : undefined;
  }, `${until} replayed`);
}

