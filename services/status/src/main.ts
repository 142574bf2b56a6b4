import { runService } from '@stemflow/runtime';
import { statusConfig } from './config.js';
import { startStatus } from './index.js';

await runService(statusConfig, ({ config, log, adapters }) => startStatus(adapters, log, { jobTtlHours: config.JOB_TTL_HOURS }), { healthServer: true });
