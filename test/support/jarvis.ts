import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJarvis, type Jarvis } from '../../src/app.js';
import { createCluster } from '../../src/cluster/index.js';
import { makeConfig, redisConfigured, type Config, type DeepPartial } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';

export interface TestJarvis {
  /** http://127.0.0.1:PORT */
  url: string;
  jarvis: Jarvis;
  logFile: string;
  /** The log file with every line logged before the call. */
  logs(): Promise<string>;
  /** Polls the log until `predicate` holds (or fails after `timeoutMs`): synchronising on what is logged, not on time. */
  waitForLog(predicate: (log: string) => boolean, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/** Config for a Jarvis in front of a mock upstream that serves every model; the simulator runs fast. */
export function throughMock(baseUrl: string): DeepPartial<Config> {
  return { simulator: { tokensPerSec: 2000, ttftMs: 0 }, upstreams: [{ name: 'mock', baseUrl, models: ['*'] }], defaultModel: 'mock-model' };
}

/**
 * A real Jarvis on an ephemeral loopback port with its own log file: several can run in one process. With
 * `redis.url` in the overrides it joins that cluster, as main.ts does.
 */
export async function startJarvis(overrides: DeepPartial<Config> = {}): Promise<TestJarvis> {
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-test-'));
  const logFile = join(dir, 'system.log');
  // The embedded ledger in the test's own folder, unless the test names another.
  const config = makeConfig({ dataDir: dir, ...overrides, host: '127.0.0.1', port: 0, log: { level: 'info', format: 'logfmt', stdout: false, ...overrides.log, file: logFile } });
  const { logger, flushed, close: closeLog } = createLogger(config.log);
  const cluster = redisConfigured(config) ? await createCluster(config, logger) : undefined;
  const jarvis = await createJarvis({ config, log: logger, cluster });
  const url = await jarvis.listen();
  // Lines wait a few ms to be written together: what was logged before this call is in the file once it reads.
  const logs = async () => flushed().then(() => readFile(logFile, 'utf8')).catch(() => '');
  let closed = false;
  return {
    url,
    jarvis,
    logFile,
    logs,
    async waitForLog(predicate, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = await logs();
        if (predicate(text)) return text;
        if (Date.now() > deadline) throw new Error(`log condition not met within ${timeoutMs} ms; log so far:\n${text.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await jarvis.shutdown();
      await closeLog();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
