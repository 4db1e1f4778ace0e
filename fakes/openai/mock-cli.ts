// Standalone mock upstream for benchmarks and manual runs:
//   tsx fakes/openai/mock-cli.ts --port 0 [--host 127.0.0.1] [--defaults '{"tokens":50}']
// Prints exactly one line, `MOCK_UPSTREAM_READY <url>`, so a parent process can wait for it and learn the port.
import { parseArgs } from 'node:util';
import { startMockUpstream, type MockDefaults } from './mock.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    defaults: { type: 'string' },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid --port ${values.port}\n`);
  process.exit(2);
}
const defaults = values.defaults ? (JSON.parse(values.defaults) as MockDefaults) : undefined;
const upstream = await startMockUpstream({ port, host: values.host, defaults });
process.stdout.write(`MOCK_UPSTREAM_READY ${upstream.url}\n`);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  // Exit explicitly: the parent expects the process gone promptly after the signal, even if a stray
  // handle (e.g. a stdin pipe) would otherwise keep the event loop alive.
  upstream.close().then(() => process.exit(0), () => process.exit(1));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
