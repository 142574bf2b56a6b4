/**
 * `pnpm start`: gateway, decoder, separator and status in one process, sharing one set of
 * adapters. With no AMQP_URL, S3_ENDPOINT or DATABASE_URL that is the in-process bus, the
 * filesystem store and the embedded job store under STORAGE_ROOT: no servers needed.
 */
import { startGateway } from '@stemflow/gateway';
import { runService } from '@stemflow/runtime';
import { startPipeline } from './pipeline.js';
import { resumeInFlight } from './resume.js';

await runService('all-in-one', async ({ config, log, adapters, checks }) => {
  const pipeline = await startPipeline(adapters, log, {
    device: config.SEPARATOR_DEVICE,
    threads: config.SEPARATOR_THREADS,
    maxDurationSec: config.MAX_DURATION_SEC,
    maxModelRuns: config.MAX_MODEL_RUNS,
    decodeTimeoutSec: config.DECODE_TIMEOUT_SEC,
    decodeStallSec: config.DECODE_STALL_SEC,
    maxHoldSec: config.SEPARATOR_MAX_HOLD_SEC,
    jobTtlHours: config.JOB_TTL_HOURS,
  });
  // With the in-process bus, a killed process lost its events: announce its unfinished jobs again.
  if (!config.AMQP_URL) await resumeInFlight({ ...adapters, log });
  const gateway = await startGateway({ ...adapters, log: log.child({ component: 'gateway' }) }, config, checks);
  log.info({ url: `http://localhost:${config.PORT}` }, `stemflow is running: open http://localhost:${config.PORT}`);
  return {
    stop: async () => {
      await gateway.stop();
      await pipeline.stop();
    },
  };
}, { needsFfmpeg: true });
