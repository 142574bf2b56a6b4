import { addressPolicy } from '@stemflow/net';
import { runService } from '@stemflow/runtime';
import { decoderConfig } from './config.js';
import { startDecoder } from './index.js';

await runService(
  decoderConfig,
  ({ config, log, adapters }) =>
    startDecoder(
      { ...adapters, log },
      {
        maxDurationSec: config.MAX_DURATION_SEC,
        maxModelRuns: config.MAX_MODEL_RUNS,
        timeoutSec: config.DECODE_TIMEOUT_SEC,
        stallSec: config.DECODE_STALL_SEC,
        import: { policy: addressPolicy(config.OUTBOUND_ALLOW_CIDRS), timeoutMs: config.IMPORT_TIMEOUT_SEC * 1000, maxBytes: config.MAX_UPLOAD_BYTES },
      },
    ),
  { healthServer: true, needsFfmpeg: true },
);
