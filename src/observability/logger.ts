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
  const streams: pino.StreamEntry[] = [];
  const add = (dest: Destination) => {
    // A closed pipe or a full disk must not crash the server: drop log output instead (as pino advises).
    dest.on('error', () => {});
    destinations.push(dest);
    streams.push({ level: 'trace', stream: cfg.format === 'logfmt' ? { write: (line: string) => dest.write(toLogfmt(line)) } : dest });
  };
  if (opts.stdout ?? cfg.stdout) add(pino.destination({ dest: 1, sync: false }));
  if (cfg.file) add(pino.destination({ dest: cfg.file, sync: false, mkdir: true }));

  const logger = pino(
    {
      level: cfg.level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'apiKey', '*.apiKey', 'apiKeys', 'api_key', 'key'],
        censor: '[redacted]',
      },
    },
    pino.multistream(streams),
  );

  return {
    logger,
    close: async () => {
      await Promise.all(
        destinations.map(
          (d) =>
            new Promise<void>((resolve) => {
              // sonic-boom may not have opened its file yet; ending before 'ready' throws.
              const end = () => {
                d.once('close', () => resolve());
                d.once('error', () => resolve());
                d.end();
              };
              if ((d as unknown as { fd: number }).fd >= 0) end();
              else d.once('ready', end);
            }),
        ),
      );
    },
  };
}
