/** The gateway's configuration: the shared pieces (packages/config) and its own. */
import { apiKeys, blankIsUnset, corsOrigins, defineService, infraEnv, int, keySettings, maxModelRuns, maxUploadBytes, opt, outboundEnv, port, qualityEnv, type ConfigOf } from '@stemflow/config';
import { z } from 'zod';

/** The gateway's own variables: its listener, uploads, keys and limits, CORS. */
export const httpEnv = z.object({
  PORT: port(8000),
  HOST: z.preprocess(blankIsUnset, z.string().default('0.0.0.0')),
  MAX_UPLOAD_BYTES: maxUploadBytes,
  /** An upload that sends nothing for this long is dropped (its partial object removed). */
  HTTP_IDLE_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1, 3600).default(60)),
  /** Uploads slower than this on average over an idle-timeout window are refused (slow-loris). */
  UPLOAD_MIN_BYTES_PER_SEC: z.preprocess(blankIsUnset, int(0).default(1024)),
  /** Input objects and unfinished multipart uploads older than this that no job owns are removed. */
  UPLOAD_ORPHAN_GRACE_SEC: z.preprocess(blankIsUnset, int(1).default(3600)),
  /** An upload's request head, and its multipart form up to the file, must arrive within this. */
  REQUEST_HEAD_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1, 3600).default(30)),
  /** Open connections the gateway holds at once, in all and per client address (503 past them). */
  MAX_CONNECTIONS: z.preprocess(blankIsUnset, int(1).default(1024)),
  MAX_CONNECTIONS_PER_CLIENT: z.preprocess(blankIsUnset, int(1).default(64)),
  /** Comma-separated bearer tokens; unset → no authentication. */
  API_KEYS: opt(apiKeys),
  MAX_MODEL_RUNS: maxModelRuns,
  /** Webhook URL and limits per API key ("*": every key; without API_KEYS, every client together). */
  API_KEY_SETTINGS: opt(keySettings),
  /** Browser origins allowed to call the API (CORS), comma-separated, or `*`; unset → none. */
  CORS_ORIGINS: opt(corsOrigins),
});

/** API_KEY_SETTINGS names only keys API_KEYS lists, and a webhook_url needs the secret the webhook service signs with. */
export function checkKeySettings(c: { API_KEYS?: string[] | undefined; API_KEY_SETTINGS?: Record<string, { webhook_url?: string | undefined }> | undefined; WEBHOOK_SECRET?: string | undefined }, embedded = false): string | undefined {
  const unknownKeys = Object.keys(c.API_KEY_SETTINGS ?? {}).filter((k) => k !== '*' && !(c.API_KEYS ?? []).includes(k));
  if (unknownKeys.length) return `API_KEY_SETTINGS names ${unknownKeys.length} key(s) that API_KEYS does not list (use "*" for every key)`;
  // The embedded server makes its own secret; a gateway must share the webhook service's.
  if (!embedded && !c.WEBHOOK_SECRET && Object.values(c.API_KEY_SETTINGS ?? {}).some((s) => s.webhook_url)) {
    return 'API_KEY_SETTINGS sets a webhook_url but WEBHOOK_SECRET is not set (the webhook service signs with it)';
  }
  return undefined;
}

export const gatewayConfig = defineService('gateway', infraEnv.extend(httpEnv.shape).extend(outboundEnv.shape).extend(qualityEnv.shape), (c) => checkKeySettings(c));
export type GatewayConfig = ConfigOf<typeof gatewayConfig>;
