/** SSE framing, in one place for every stream Jarvis writes: answers of every API and the events route. */

/** An event's data as SSE lines: data with newlines in it (pretty-printed JSON) takes one `data:` line each. */
export function dataFrame(data: string): string {
  return data.includes('\n') ? `data: ${data.replaceAll('\n', '\ndata: ')}\n\n` : `data: ${data}\n\n`;
}

const LINE_BREAKS = /[\r\n]/g;

/**
 * A named event (`event:`, then its data as dataFrame frames it), with an `id:` when given. A line break in the
 * name (an upstream's `type`) would end the line, and could end the event: it becomes a space.
 */
export function eventFrame(type: string, data: string, id?: string | number): string {
  const name = type.includes('\n') || type.includes('\r') ? type.replace(LINE_BREAKS, ' ') : type;
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${name}\n${dataFrame(data)}`;
}

/** A comment line: ignored by clients, it keeps proxies from closing an idle stream. */
export function commentFrame(text: string): string {
  return `: ${text.replace(LINE_BREAKS, ' ')}\n\n`;
}

export const PING_FRAME = commentFrame('ping');
