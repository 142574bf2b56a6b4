import { runService } from '@stemflow/runtime';
import { separatorConfig } from './config.js';
import { loadEngines, startSeparator } from './index.js';

await runService(
  separatorConfig,
  async ({ config, log, adapters, checks }) => {
    const { engines, health } = await loadEngines({
      device: config.SEPARATOR_DEVICE,
      threads: config.SEPARATOR_THREADS,
      concurrency: config.SEPARATOR_CONCURRENCY,
      memArena: false,
      quality: config.DEFAULT_QUALITY,
      log,
    });
    checks.push(health);
    const separator = await startSeparator({ ...adapters, log, engines, maxHoldMs: config.SEPARATOR_MAX_HOLD_SEC * 1000 });
    return {
      stop: async () => {
        await separator.stop();
        await Promise.all(engines.map((e) => e.close()));
      },
    };
  },
  { healthServer: true, needsFfmpeg: true },
);
