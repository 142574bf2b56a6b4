import { adapterChecks, runService, startHealthServer } from '@stemflow/runtime';
import { startStatus } from './service.js';

await runService('status', async ({ config, log, adapters }) => {
  const svc = await startStatus(adapters, log, { jobTtlHours: config.JOB_TTL_HOURS });
  const http = await startHealthServer(config.PORT, adapterChecks(adapters));
  log.info({ port: config.PORT }, 'status service ready');
  return {
    stop: async () => {
      http.close();
      await svc.stop();
    },
  };
});
