import { createCluster, RedisUnavailableError, type Cluster } from './cluster/index.js';
import { loadConfig, ConfigError, redisConfigured } from './config.js';
import { createJarvis } from './app.js';
import { createLogger } from './observability/logger.js';
import { loadTls } from './http/tls.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`jarvis: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let tls;
  try {
    // Before anything connects anywhere: a bad certificate stops the start with one line.
    tls = loadTls(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`jarvis: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
  const { logger, close } = createLogger(config.log);
  let cluster: Cluster | undefined;
  if (redisConfigured(config)) {
    try {
      cluster = await createCluster(config, logger);
    } catch (err) {
      if (!(err instanceof RedisUnavailableError)) throw err;
      process.stderr.write(`jarvis: ${err.message}\n`);
      await close();
      process.exit(2);
    }
  }
  const jarvis = await createJarvis({ config, log: logger, cluster, tls, env: process.env });
  const address = await jarvis.listen();
  logger.info({ address, default_model: config.defaultModel, log_file: config.log.file }, 'jarvis_listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'signal_received');
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
