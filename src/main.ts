import cluster from 'node:cluster';
import { hostname } from 'node:os';
import { loadConfig, ConfigError, redisConfigured, type Config } from './config.js';
import { runPrimary, workerCount, workerInstanceId, workerSlot } from './cluster/workers.js';
import { createLogger } from './observability/logger.js';
import { loadTls } from './http/tls.js';
import type { Cluster } from './cluster/index.js';

/** A bad setting: one line on stderr and exit code 2, before anything connects anywhere. */
function refuse(err: unknown): never {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`jarvis: invalid configuration: ${err.message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    refuse(err);
  }
  let tls;
  try {
    // Before anything connects anywhere: a bad certificate stops the start with one line.
    tls = loadTls(config);
  } catch (err) {
    refuse(err);
  }
  const workers = workerCount(config.workers);
  if (workers > 1 && cluster.isPrimary) {
    // The primary forks the workers and loads nothing of the app (cluster/workers.ts).
    const { logger, close } = createLogger(config.log);
    runPrimary({ workers, roundRobin: process.env.NODE_CLUSTER_SCHED_POLICY === 'rr', log: logger, shutdownGraceMs: config.shutdownGraceMs, exit: (code) => void close().then(() => process.exit(code)) });
    return;
  }
  const worker = workerSlot(process.env);
  if (worker !== undefined) config = { ...config, instanceId: workerInstanceId(config.instanceId ?? hostname(), worker) };

  const { logger, close } = createLogger(config.log);
  const [{ createCluster, RedisUnavailableError }, { createJarvis }] = await Promise.all([import('./cluster/index.js'), import('./app.js')]);
  let redis: Cluster | undefined;
  if (redisConfigured(config)) {
    try {
      redis = await createCluster(config, logger);
    } catch (err) {
      if (!(err instanceof RedisUnavailableError)) throw err;
      process.stderr.write(`jarvis: ${err.message}\n`);
      await close();
      process.exit(2);
    }
  }
  const jarvis = await createJarvis({ config, log: logger, cluster: redis, tls, env: process.env, worker });
  const address = await jarvis.listen();
  logger.info({ address, default_model: config.defaultModel, log_file: config.log.file, worker, pid: process.pid }, 'jarvis_listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, worker }, 'signal_received');
    jarvis
      .shutdown()
      .then(close)
      .then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`jarvis: shutdown failed: ${String(err)}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`jarvis: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
