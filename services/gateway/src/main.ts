import { runService } from '@stemflow/runtime';
import { startGateway } from './entry-points/server.js';

await runService('gateway', async ({ config, log, adapters }) => {
  const gw = await startGateway({ ...adapters, log }, config);
  log.info({ url: `http://localhost:${config.PORT}` }, 'gateway listening');
  return { stop: gw.stop };
});
