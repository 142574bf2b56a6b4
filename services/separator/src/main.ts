import { adapterChecks, runService, startHealthServer } from '@stemflow/runtime';
import { loadEngine, startSeparator } from './service.js';

await runService('separator', async ({ config, log, adapters }) => {
  const { engine } = await loadEngine({ device: config.SEPARATOR_DEVICE, threads: config.SEPARATOR_THREADS, memArena: false, log });
  const svc = await startSeparator({ ...adapters, log, engine });
  const http = await startHealthServer(config.PORT, adapterChecks(adapters));
  log.info({ port: config.PORT }, 'separator ready');
  return {
    stop: async () => {
      http.close();
      await svc.stop();
    },
  };
});
