import { runService } from '@stemflow/runtime';
import { loadEngine, startSeparator } from './service.js';

await runService(
  'separator',
  async ({ config, log, adapters, checks }) => {
    const { engine, health } = await loadEngine({ device: config.SEPARATOR_DEVICE, threads: config.SEPARATOR_THREADS, memArena: false, log });
    checks.push(health);
    const separator = await startSeparator({ ...adapters, log, engine, maxHoldMs: config.SEPARATOR_MAX_HOLD_SEC * 1000 });
    return {
      stop: async () => {
        await separator.stop();
        await engine.close();
      },
    };
  },
  { healthServer: true, needsFfmpeg: true },
);
