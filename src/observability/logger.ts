import pino, { type Logger } from 'pino';
import type { Config } from '../config.js';
import { logfmtLine } from './logfmt.js';

export interface JarvisLogger {
  logger: Logger;
  /** Resolves once every line logged so far has reached its destinations (tests read the log file). */
  flushed(): Promise<void>;
  /** Writes out what is buffered and closes the file; call once at exit. */
  close(): Promise<void>;
}

type Destination = ReturnType<typeof pino.destination>;

/** How long a line may wait to be written with others, and how much may wait. */
const FLUSH_MS = 20;
const FLUSH_BYTES = 64 * 1024;

/**
 * pino to stdout and to the log file, both through asynchronous sonic-boom destinations: nothing on the
 * request path waits for a disk or a pipe. Keys and Authorization headers are redacted wherever they appear.
 */
export function createLogger(cfg: Config['log'], opts: { stdout?: boolean } = {}): JarvisLogger {
  const destinations: Destination[] = [];
  if (opts.stdout ?? cfg.stdout) destinations.push(pino.destination({ dest: 1, sync: false }));
  if (cfg.file) destinations.push(pino.destination({ dest: cfg.file, sync: false, mkdir: true }));
  // Bytes handed to each destination and bytes it has written, so `flushed()` can wait for the difference.
  const sinks = destinations.map((d) => ({ d, queued: 0, written: 0, waiters: [] as (() => void)[] }));
  for (const sink of sinks) {
    const caughtUp = () => {
      if (sink.written < sink.queued) return;
      for (const wake of sink.waiters.splice(0)) wake();
    };
    sink.d.on('write', (n: number) => {
      sink.written += n;
      caughtUp();
    });
    // A closed pipe or a full disk must not crash the server: drop log output instead (as pino advises).
    sink.d.on('error', () => {
      sink.written = sink.queued;
      caughtUp();
    });
  }
  // Each line is formatted once, however many destinations it goes to, and lines go out together at most every
  // FLUSH_MS (or at once past FLUSH_BYTES). A stream logs a dozen lines; a file write for each, or even for each
  // turn of the event loop, cost a tenth of a flood's CPU and a fifth of a barge-in storm's.
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    const text = pending;
    pending = '';
    const bytes = Buffer.byteLength(text);
    for (const sink of sinks) {
      sink.queued += bytes;
      sink.d.write(text);
    }
  };
  const out = {
    write(line: string) {
      pending += line;
      if (pending.length >= FLUSH_BYTES) flush();
      else if (!timer) timer = setTimeout(flush, FLUSH_MS).unref();
    },
  };

  // Lines logged in the same millisecond share one formatted time.
  let stampedAt = 0;
  let iso = '';
  const now = () => {
    const t = Date.now();
    if (t !== stampedAt) {
      stampedAt = t;
      iso = new Date(t).toISOString();
    }
    return iso;
  };
  // logfmt lines are written straight from the call's arguments: pino decides the level (a line of a level that is
  // off costs nothing) and owns nothing else of it. Building pino's JSON and parsing it back was a third of what
  // a stream allocated. JSON lines go through pino as usual.
  const direct = cfg.format === 'logfmt';
  const logger: Logger = pino(
    {
      level: cfg.level,
      base: null,
      timestamp: () => `,"time":"${now()}"`,
      ...(direct
        ? {
            hooks: {
              logMethod(this: Logger, args: unknown[], _method: unknown, level: number) {
                out.write(logfmtLine(now(), this.levels.labels[level] ?? String(level), args, this === logger ? undefined : this.bindings()));
              },
            },
          }
        : {}),
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        // Named paths only: a wildcard first segment (`*.apiKey`) makes pino run every value of every line through
        // the redactor, a quarter of the cost of a line.
        paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'apiKey', 'apiKeys', 'api_key', 'key', 'upstream.apiKey', 'upstreams[*].apiKey'],
        censor: '[redacted]',
      },
    },
    out,
  );

  return {
    logger,
    flushed: () => {
      flush();
      return Promise.all(sinks.map((sink) => (sink.written >= sink.queued ? undefined : new Promise<void>((resolve) => sink.waiters.push(resolve))))).then(() => {});
    },
    // sonic-boom waits for its file to open before ending, and never closes stdout itself.
    close: () => {
      flush();
      return Promise.all(
        destinations.map(
          (d) =>
            new Promise<void>((resolve) => {
              d.once('close', () => resolve());
              d.once('error', () => resolve());
              d.end();
            }),
        ),
      ).then(() => {});
    },
  };
}
