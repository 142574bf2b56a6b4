import { runService } from '@stemflow/runtime';
import { startStatus } from './index.js';

await runService('status', ({ config, log, adapters }) => startStatus(adapters, log, { jobTtlHours: config.JOB_TTL_HOURS }), { healthServer: true });
