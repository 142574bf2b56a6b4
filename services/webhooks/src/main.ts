import { runService } from '@stemflow/runtime';
import { addressPolicy } from '@stemflow/net';
import { startWebhooks } from './service.js';

await runService('webhooks', async ({ config, log, adapters }) => {
  if (!config.WEBHOOK_SECRET) {
    process.stderr.write('stemflow webhooks cannot start: WEBHOOK_SECRET is not set (the gateways need the same one; e.g. openssl rand -base64 32)\n');
    process.exit(1);
  }
  return startWebhooks({ ...adapters, log }, { secret: config.WEBHOOK_SECRET, policy: addressPolicy(config.OUTBOUND_ALLOW_CIDRS), timeoutMs: config.WEBHOOK_TIMEOUT_SEC * 1000 });
}, { healthServer: true });
