// When each tagged request's headers reached its socket, from undici's diagnostics channel: the moment a barge-in
// starts, on the driver's clock (which is also the in-process mock's).
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

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
