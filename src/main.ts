// Process entry: config → app → listen → signals → drain.

import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { buildPulse } from './app.js';
import { runPrimary } from './cluster.js';
import { ConfigError, loadConfig, type Config } from './config.js';

function readConfig(): Config {
  try {
    return loadConfig(process.env, availableParallelism());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pulse: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  if (config.workers > 1 && cluster.isPrimary) {
    runPrimary(config);
    return;
  }
  const pulse = await buildPulse(config);
  const port = await pulse.listen();
  pulse.app.log.info({ port, instanceId: pulse.presence.instanceId, database: config.databaseUrl ? 'postgresql' : `pglite:${config.dataDir}` }, 'pulse listening');

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      // A worker gets Ctrl-C from the terminal and SIGTERM from the primary: one drain is enough.
      if (cluster.isWorker) return;
      pulse.app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    pulse.app.log.info({ signal }, 'shutting down');
    // Whatever happens, the process is gone within 10 s.
    setTimeout(() => {
      pulse.app.log.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 1_500).unref();
    pulse.stop().then(
      () => process.exit(0),
      (err: Error) => {
        pulse.app.log.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err: Error) => {
  process.stderr.write(`pulse: failed to start: ${err.message}\n`);
  process.exit(1);
});
