import { runService } from '@stemflow/runtime';
import { separatorConfig } from './config.js';
import { loadEngines, startSeparator } from './index.js';

await runService(
  separatorConfig,
  async ({ config, log, adapters, checks }) => {
    const { pool, health } = await loadEngines({
      device: config.SEPARATOR_DEVICE,
      threads: config.SEPARATOR_THREADS,
      engines: config.SEPARATOR_ENGINES,
      memArena: false,
      quality: config.DEFAULT_QUALITY,
      log,
    });
    checks.push(health);
    const separator = await startSeparator({ ...adapters, log, pool, concurrency: config.SEPARATOR_CONCURRENCY, maxHoldMs: config.SEPARATOR_MAX_HOLD_SEC * 1000 });
    return {
      stop: async () => {
        await separator.stop();
        await pool.close();
      },
    };
  },
  { healthServer: true, needsFfmpeg: true },
);
