import { adapterChecks, runService, startHealthServer } from '@stemflow/runtime';
import { startDecoder } from './service.js';

await runService('decoder', async ({ config, log, adapters }) => {
  const svc = await startDecoder({ ...adapters, log }, { maxDurationSec: config.MAX_DURATION_SEC });
  const http = await startHealthServer(config.PORT, adapterChecks(adapters));
  log.info({ port: config.PORT }, 'decoder ready');
  return {
    stop: async () => {
      http.close();
      await svc.stop();
    },
  };
});
