import { runService } from '@stemflow/runtime';
import { addressPolicy } from '@stemflow/net';
import { webhooksConfig } from './config.js';
import { startWebhooks } from './index.js';

await runService(webhooksConfig, async ({ config, log, adapters, checks }) => {
  // Without a secret the gateways accept no webhook either: nothing to deliver, and health says so.
  if (!config.WEBHOOK_SECRET) {
    log.warn('WEBHOOK_SECRET is not set: webhooks are off (set the same secret on the gateways and here to turn them on)');
    checks.push({ name: 'webhooks', check: async () => ({ ok: true, detail: 'off: no WEBHOOK_SECRET' }) });
    return { stop: async () => {} };
  }
  return startWebhooks({ ...adapters, log }, { secret: config.WEBHOOK_SECRET, policy: addressPolicy(config.OUTBOUND_ALLOW_CIDRS), timeoutMs: config.WEBHOOK_TIMEOUT_SEC * 1000 });
}, { healthServer: true });
