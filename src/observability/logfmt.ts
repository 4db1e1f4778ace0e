const SKIP = new Set(['level', 'time', 'msg']);
const BARE = /^[\w.:/@+-]+$/;

function value(v: unknown): string {
  if (typeof v === 'string') return BARE.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'object' && 'message' in v && typeof (v as { message: unknown }).message === 'string') {
    return JSON.stringify((v as { message: string }).message);
  }
  return JSON.stringify(JSON.stringify(v));
}

/**
 * One pino JSON line as logfmt: `<time> <level> <event> key=value ...`, with the event name first so the log
 * reads as the documented vocabulary (`stream_end trace=... cleanup_done=true`).
 */
export function toLogfmt(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  let out = `${String(rec.time)} ${String(rec.level)} ${String(rec.msg ?? '')}`;
  for (const key in rec) {
    if (SKIP.has(key)) continue;
    out += ` ${key}=${value(rec[key])}`;
  }
  return out + '\n';
}
