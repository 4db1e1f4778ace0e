import { format } from 'node:util';

const BARE = /^[\w.:/@+-]+$/;

/** Keys whose values are secrets, at any depth of what is logged: written as [redacted]. */
const SECRET = new Set(['authorization', 'apiKey', 'apiKeys', 'api_key', 'key']);
const CENSOR = '[redacted]';

/** A value with every secret-named member replaced, at any depth (only objects need the walk). */
function redacted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redacted);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = SECRET.has(k) ? CENSOR : redacted(x);
  return out;
}

export function value(v: unknown): string {
  if (typeof v === 'string') return BARE.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'object' && 'message' in v && typeof (v as { message: unknown }).message === 'string') {
    return JSON.stringify((v as { message: string }).message);
  }
  return JSON.stringify(JSON.stringify(redacted(v)));
}

/**
 * One log call as its logfmt line, built directly from the call's arguments (no JSON in between):
 * `<time> <level> <event> key=value ...`, the event name first so the log reads as the documented vocabulary
 * (`stream_end trace=... cleanup_done=true`). `args` are a pino call's: an object of fields and the event, or
 * just the event (with format arguments, as pino takes them).
 */
export function logfmtLine(time: string, level: string, args: unknown[], bindings?: Record<string, unknown>): string {
  let fields: unknown;
  let rest = args;
  if (typeof args[0] === 'object' && args[0] !== null) {
    fields = args[0] instanceof Error ? { err: args[0] } : args[0];
    rest = args.slice(1);
  }
  const msg = rest.length === 0 ? (args[0] instanceof Error ? args[0].message : '') : rest.length === 1 ? String(rest[0]) : format(...(rest as [unknown, ...unknown[]]));
  let out = `${time} ${level} ${msg}`;
  for (const source of [bindings, fields]) {
    if (!source) continue;
    for (const key in source as Record<string, unknown>) {
      const v = (source as Record<string, unknown>)[key];
      // As JSON would: a member that is undefined is not there.
      if (v === undefined) continue;
      out += ` ${key}=${SECRET.has(key) ? JSON.stringify(CENSOR) : value(v)}`;
    }
  }
  return out + '\n';
}
