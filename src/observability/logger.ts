import pino, { type Logger } from 'pino';
import type { Config } from '../config.js';
import { toLogfmt } from './logfmt.js';

export interface JarvisLogger {
  logger: Logger;
  /** Writes out what is buffered and closes the file; call once at exit. */
  close(): Promise<void>;
}

type Destination = ReturnType<typeof pino.destination>;

/**
 * pino to stdout and to the log file, both through asynchronous sonic-boom destinations: nothing on the
 * request path waits for a disk or a pipe. Keys and Authorization headers are redacted wherever they appear.
 */
export function createLogger(cfg: Config['log'], opts: { stdout?: boolean } = {}): JarvisLogger {
  const destinations: Destination[] = [];
  if (opts.stdout ?? cfg.stdout) destinations.push(pino.destination({ dest: 1, sync: false }));
  if (cfg.file) destinations.push(pino.destination({ dest: cfg.file, sync: false, mkdir: true }));
  // A closed pipe or a full disk must not crash the server: drop log output instead (as pino advises).
  for (const d of destinations) d.on('error', () => {});
  // Each line is formatted once, however many destinations it goes to, and the lines of one turn of the event
  // loop go out together: a stream logs a dozen lines, and one write per line was a tenth of a flood's CPU.
  const format = cfg.format === 'logfmt' ? toLogfmt : (line: string) => line;
  let pending = '';
  const flush = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    for (const d of destinations) d.write(text);
  };
  const out = {
    write(line: string) {
      if (pending === '') setImmediate(flush);
      pending += format(line);
    },
  };

  let stampedAt = 0;
  let stamp = '';
  const logger = pino(
    {
      level: cfg.level,
      base: null,
      timestamp: () => {
        // Lines logged in the same millisecond share one formatted time.
        const now = Date.now();
        if (now !== stampedAt) {
          stampedAt = now;
          stamp = `,"time":"${new Date(now).toISOString()}"`;
        }
        return stamp;
      },
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'apiKey', '*.apiKey', 'apiKeys', 'api_key', 'key'],
        censor: '[redacted]',
      },
    },
    out,
  );

  return {
    logger,
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
