// What every bench upstream process does around its server (bench/anthropic-mock.ts, bench/gemini-mock.ts).
import type * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * Runs `server` as a process of its own: listening on `host`:`port`, one line `<ready> http://host:port` on stdout
 * once it is (what bench/targets.ts waits for), and on SIGTERM or SIGINT closed with its connections dropped (a
 * client's keep-alive does not hold the bench up), exiting within a second.
 */
export function serveMockProcess(server: http.Server, host: string, port: number, ready: string): void {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(port, host, () => {
    const { port: bound } = server.address() as AddressInfo;
    process.stdout.write(`${ready} http://${host}:${bound}\n`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    for (const s of sockets) s.destroy();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
