// A driver's requests, each tagged (an `x-bench-request` header, and the same tag as the body's `user`): when its
// headers reached its socket, from undici's diagnostics channel (the moment a barge-in starts), and what the
// in-process mock recorded of it. Both on the driver's clock, which is also the mock's.
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MockUpstream, RecordedRequest } from '../fakes/openai/index.js';

const SEND_HEADERS = 'undici:client:sendHeaders';
export const REQUEST_HEADER = 'x-bench-request';
const REQUEST_HEADER_RE = new RegExp(`\\r\\n${REQUEST_HEADER}: (\\S+)\\r\\n`, 'i');

/** When each tagged request's headers are handed to its socket (undici's diagnostics channel), by tag. */
export function watchHeadersSent(): { times: Map<string, number>; stop(): void } {
  const times = new Map<string, number>();
  const onSend = (message: unknown) => {
    const tag = REQUEST_HEADER_RE.exec((message as { headers: string }).headers)?.[1];
    if (tag) times.set(tag, performance.now());
  };
  diagnostics.subscribe(SEND_HEADERS, onSend);
  return { times, stop: () => diagnostics.unsubscribe(SEND_HEADERS, onSend) };
}

/**
 * The mock's records from `first` on, by tag, once every one of them has closed (or 10 s have passed: the caller
 * counts what is still open).
 */
export async function upstreamByTag(mock: MockUpstream, first: number): Promise<{ upstream: RecordedRequest[]; byTag: Map<string, RecordedRequest> }> {
  const upstream = mock.requests.slice(first);
  await Promise.race([Promise.all(upstream.map((r) => r.closed)), sleep(10_000)]);
  const byTag = new Map<string, RecordedRequest>();
  for (const r of upstream) if (typeof r.body?.user === 'string') byTag.set(r.body.user as string, r);
  return { upstream, byTag };
}
