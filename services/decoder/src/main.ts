import { runService } from '@stemflow/runtime';
import { startDecoder } from './service.js';

await runService('decoder', ({ config, log, adapters }) => startDecoder({ ...adapters, log }, { maxDurationSec: config.MAX_DURATION_SEC }), { healthServer: true });
