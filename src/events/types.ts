/** `chat.truncated`: a client said how much of an answer was heard (the Realtime API's conversation.item.truncate). */
export const CHAT_EVENT_TYPES = ['chat.start', 'chat.token', 'chat.end', 'chat.error', 'chat.cancelled', 'chat.truncated'] as const;
export type ChatEventType = (typeof CHAT_EVENT_TYPES)[number];

/** Who a stream belongs to: what every one of its events carries. */
export interface StreamMeta {
  request_id: string;
  session_id: string;
  trace: string;
  /** The API key identity that created the stream; used to filter subscribers, never sent to them. */
  owner: string | null;
}

export interface ChatEvent {
  /** Monotonic per bus; usable as an SSE Last-Event-ID. */
  id: number;
  type: ChatEventType;
  request_id: string;
  session_id: string;
  trace: string;
  /** Unix epoch milliseconds. */
  ts: number;
  data: Record<string, unknown>;
}

/** An event as held by a bus: serialised once, however many subscribers receive it. */
export interface PublishedEvent {
  readonly event: ChatEvent;
  readonly owner: string | null;
  readonly json: string;
}

export interface EventFilter {
  sessionId?: string | undefined;
  /** undefined: every owner (no API keys configured). */
  owner?: string | null | undefined;
}

export function matches(filter: EventFilter, published: PublishedEvent): boolean {
  if (filter.owner !== undefined && published.owner !== filter.owner) return false;
  if (filter.sessionId !== undefined && published.event.session_id !== filter.sessionId) return false;
  return true;
}
