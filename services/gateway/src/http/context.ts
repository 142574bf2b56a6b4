/** What every router shares: the gateway's options, and what the request's caller and path are. */
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { KeySettings } from '@stemflow/config';
import type { Quality } from '@stemflow/contracts';
import type { Ledger } from '@stemflow/jobs';
import type { AddressPolicy } from '@stemflow/net';
import type { Check } from '@stemflow/runtime';
import type { EventsHub } from '../use-cases/events-hub.js';
import type { Deps } from '../use-cases/jobs.js';
import type { JobReader } from '../use-cases/job-view.js';
import type { Submitter } from '../use-cases/submit-job.js';
import { problem } from './problems.js';

export type GatewayOptions = {
  maxUploadBytes: number;
  /** Slow-loris guard for uploads, from the first byte (0: none). */
  minUploadBytesPerSec?: number;
  /** The window that rate is averaged over; also the server's idle timeout. */
  idleTimeoutMs?: number;
  /** An upload's multipart form must reach its file within this. */
  formTimeoutMs?: number;
  /** A job may cost at most this many model runs (options alone are checked here). */
  maxModelRuns?: number;
  /** The graph a job separates with when it does not say (default: fast). */
  defaultQuality?: Quality;
  apiKeys?: string[] | undefined;
  /** How often SSE looks at the read model. */
  ssePollMs?: number;
  /** A quiet SSE stream gets a `: keep-alive` comment this often, so proxies keep it open. */
  sseKeepAliveMs?: number;
  /** Presigned download links live this long. */
  presignSec?: number;
  /** A live stem's client that takes nothing this long is cut (default 60 s). */
  liveStallMs?: number;
  /** What /api/health reports (default: the adapters). */
  checks?: Check[];
  /** Job events pushed from the bus; without it (or while it is down) SSE polls the read model. */
  hub?: EventsHub;
  /** A stream that heard nothing from the bus this long reads the read model once (an event it missed). */
  sseQuietPollMs?: number;
  /** Webhook URL and limits per API key ("*": every key, or every client without keys). */
  keySettings?: Record<string, KeySettings> | undefined;
  /** Idempotency keys, job slots and request counters shared with the other gateways. */
  ledger?: Ledger | undefined;
  /** Which addresses an input_url and a callback_url may name (default: public ones only); the decoder and the webhook service check again where they connect. */
  policy?: AddressPolicy;
  /** Signs webhooks (per key, derived); without it a callback_url is refused. */
  webhookSecret?: string | undefined;
  /** When set, /metrics answers only `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
  /** Browser origins allowed to call the API (CORS); none by default. `*`: any. */
  corsOrigins?: string[] | undefined;
  /** The clock the request-rate windows are counted on (tests fix it). */
  now?: () => number;
};

/** What the routers are built from. */
export type Gateway = { deps: Deps; options: GatewayOptions; reader: JobReader; submitter: Submitter };

/** The caller's owner id (undefined when the server has no API keys). */
export const ownerFor = (res: Response): string | undefined => res.locals.owner as string | undefined;
/** The caller's webhook and limits (its key's settings over "*"). */
export const settingsFor = (res: Response): KeySettings => (res.locals.settings as KeySettings | undefined) ?? {};

const JobIdParam = z.uuid();
/** The job id in the path, lower-cased (a UUID's hex digits have no case). */
export function jobIdOf(req: Request): string {
  const raw = String(req.params.id);
  const id = JobIdParam.safeParse(raw.toLowerCase());
  if (!id.success) throw problem('INVALID_JOB_ID', `"${raw.slice(0, 80)}" is not a job id`);
  return id.data;
}
