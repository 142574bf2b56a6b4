import { runService } from '@stemflow/runtime';
import { startDecoder } from './service.js';

await runService(
  'decoder',
  ({ config, log, adapters }) =>
    startDecoder({ ...adapters, log }, { maxDurationSec: config.MAX_DURATION_SEC, maxModelRuns: config.MAX_MODEL_RUNS, timeoutSec: config.DECODE_TIMEOUT_SEC, stallSec: config.DECODE_STALL_SEC }),
  { healthServer: true, needsFfmpeg: true },
);
