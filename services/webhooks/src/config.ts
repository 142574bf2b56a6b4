/** The webhook service's configuration: the shared pieces (packages/config) and its own. */
import { blankIsUnset, defineService, infraEnv, int, outboundEnv, port, type ConfigOf } from '@stemflow/config';
import { z } from 'zod';

/** The webhook service's own variables. */
export const webhooksEnv = z.object({
  /** One delivery attempt (connect, send, the receiver's answer) within this. */
  WEBHOOK_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1, 300).default(15)),
});

export const webhooksConfig = defineService('webhooks', infraEnv.extend(outboundEnv.shape).extend(webhooksEnv.shape).extend({ PORT: port(8004) }));
export type WebhooksConfig = ConfigOf<typeof webhooksConfig>;
