/**
 * `pnpm start`: gateway, decoder, separator and status in one process, sharing one set of
 * adapters. With no AMQP_URL, S3_ENDPOINT or DATABASE_URL that is the in-process bus, the
 * filesystem store and the embedded job store under STORAGE_ROOT: no servers needed.
 */
import { startGateway } from '@stemflow/gateway';
import { runService } from '@stemflow/runtime';
import { startPipeline } from './pipeline.js';

await runService('all-in-one', async ({ config, log, adapters }) => {
  const pipeline = await startPipeline(adapters, log, {
    device: config.SEPARATOR_DEVICE,
    threads: config.SEPARATOR_THREADS,
    maxDurationSec: config.MAX_DURATION_SEC,
    maxHoldSec: config.SEPARATOR_MAX_HOLD_SEC,
    jobTtlHours: config.JOB_TTL_HOURS,
  });
  const gateway = await startGateway({ ...adapters, log: log.child({ component: 'gateway' }) }, config);
  log.info({ url: `http://localhost:${config.PORT}` }, `stemflow is running: open http://localhost:${config.PORT}`);
  return {
    stop: async () => {
      await gateway.stop();
      await pipeline.stop();
    },
  };
});
