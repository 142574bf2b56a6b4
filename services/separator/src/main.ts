import { runService } from '@stemflow/runtime';
import { loadEngine, startSeparator } from './service.js';

await runService(
  'separator',
  async ({ config, log, adapters }) => {
    const { engine } = await loadEngine({ device: config.SEPARATOR_DEVICE, threads: config.SEPARATOR_THREADS, memArena: false, log });
    return startSeparator({ ...adapters, log, engine, maxHoldMs: config.SEPARATOR_MAX_HOLD_SEC * 1000 });
  },
  { healthServer: true, needsFfmpeg: true },
);
