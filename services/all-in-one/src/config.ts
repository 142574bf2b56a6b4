/**
 * `pnpm start`'s configuration: every service's variables in one process; and the list of every
 * deployable's configuration (the deployment and docs checks read it).
 */
import { defineService, infraEnv, outboundEnv, qualityEnv, type ConfigOf } from '@stemflow/config';
import { decoderConfig, decoderEnv } from '@stemflow/decoder/config';
import { checkKeySettings, gatewayConfig, httpEnv } from '@stemflow/gateway/config';
import { separatorConfig, separatorEnv } from '@stemflow/separator/config';
import { statusConfig } from '@stemflow/status/config';
import { webhooksConfig, webhooksEnv } from '@stemflow/webhooks/config';

export const allInOneConfig = defineService(
  'all-in-one',
  infraEnv.extend(httpEnv.shape).extend(decoderEnv.shape).extend(separatorEnv.shape).extend(outboundEnv.shape).extend(webhooksEnv.shape).extend(qualityEnv.shape),
  (c) => checkKeySettings(c, true),
);
export type AllInOneConfig = ConfigOf<typeof allInOneConfig>;

/** Every deployable's configuration, by name. */
export const SERVICES = { gateway: gatewayConfig, decoder: decoderConfig, separator: separatorConfig, status: statusConfig, webhooks: webhooksConfig, 'all-in-one': allInOneConfig } as const;
export type ServiceName = keyof typeof SERVICES;
