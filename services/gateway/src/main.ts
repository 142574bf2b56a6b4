import { runService } from '@stemflow/runtime';
import { createApp } from './app.js';

await runService('gateway', async ({ config, log, adapters }) => {
  const app = createApp({ ...adapters, log }, { maxUploadBytes: config.MAX_UPLOAD_BYTES, apiKeys: config.API_KEYS });
  const server = app.listen(config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  // Uploads can be long: no whole-request deadline, but an idle connection is dropped.
  server.requestTimeout = 0;
  server.setTimeout(60_000);
  log.info({ url: `http://localhost:${config.PORT}` }, 'gateway listening');
  return { stop: () => new Promise<void>((r) => server.close(() => r())) };
});
