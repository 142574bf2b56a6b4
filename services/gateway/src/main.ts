import { runService } from '@stemflow/runtime';
import { gatewayConfig } from './config.js';
import { startGateway } from './http/server.js';

await runService(gatewayConfig, async ({ config, log, adapters, checks }) => {
  const gw = await startGateway({ ...adapters, log }, config, checks);
  log.info({ url: `http://localhost:${config.PORT}` }, 'gateway listening');
  return { stop: gw.stop };
}, { needsFfmpeg: true }); // waveform peaks and mixdowns are rendered from the stems
