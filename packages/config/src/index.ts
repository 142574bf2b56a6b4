import { isIP } from 'node:net';
import { z } from 'zod';

const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const blankIsUnset = (v: unknown) => (v === '' ? undefined : v);
const opt = <T extends z.ZodType>(s: T) => z.preprocess(blankIsUnset, s.optional());

/**
 * Bearer tokens: RFC 6750's token characters only (a header carries bytes, and a key that is not
 * ASCII could never be sent as itself), no empty entries (`API_KEYS=","` must not turn
 * authentication off), no duplicates.
 */
const apiKeys = z.string().transform((s, ctx) => {
  const keys = s.split(',').map((k) => k.trim());
  if (keys.some((k) => k === '')) ctx.addIssue({ code: 'custom', message: 'has an empty key (two commas, a trailing comma, or only spaces): list keys separated by single commas' });
  else if (keys.some((k) => !/^[A-Za-z0-9\-._~+/]+=*$/.test(k))) ctx.addIssue({ code: 'custom', message: 'keys may contain only ASCII letters, digits and - . _ ~ + / (then =), as bearer tokens do' });
  else if (new Set(keys).size !== keys.length) ctx.addIssue({ code: 'custom', message: 'lists a key twice' });
  return keys;
});

/** Networks outbound requests (webhooks, imports by URL) may reach besides public addresses: `127.0.0.1/32,::1`. */
const cidrs = z.string().transform((s, ctx) => {
  const list = s.split(',').map((c) => c.trim()).filter(Boolean);
  for (const c of list) {
    const [addr, bits, extra] = c.split('/');
    const v = isIP(addr ?? '');
    const n = bits === undefined ? (v === 6 ? 128 : 32) : Number(bits);
    if (!v || extra !== undefined || !Number.isInteger(n) || n < 0 || n > (v === 6 ? 128 : 32)) ctx.addIssue({ code: 'custom', message: `"${c}" is not an address or a network (e.g. 127.0.0.1/32, 10.0.0.0/8, ::1/128)` });
  }
  return list;
});

/** Origins as browsers send them (`https://app.example.com`, no path), or `*`. */
const corsOrigins = z.string().transform((s, ctx) => {
  const list = s.split(',').map((o) => o.trim()).filter(Boolean);
  for (const o of list) {
    if (o === '*') continue;
    let ok = false;
    try {
      const u = new URL(o);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o;
    } catch {
      /* not a URL */
    }
    if (!ok) ctx.addIssue({ code: 'custom', message: `"${o}" is not an origin (scheme://host[:port], no path or trailing slash), nor *` });
  }
  return list;
});

/** Per API key (or "*" for every key): its webhook and its limits. */
export const KeySettings = z
  .object({
    webhook_url: url(['http:', 'https:']).optional().describe("Where this key's jobs report their end (unless a job names its own callback_url)."),
    max_concurrent_jobs: z.int().min(1).optional().describe('Jobs pending or processing at once.'),
    audio_minutes_per_day: z.number().positive().optional().describe('Minutes of audio separated per UTC day.'),
    requests_per_sec: z.int().min(1).optional().describe('API requests per second, over every gateway.'),
  })
  .strict();
export type KeySettings = z.infer<typeof KeySettings>;
const keySettings = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object: {"<api key>" or "*": {"webhook_url": …, "max_concurrent_jobs": …, "audio_minutes_per_day": …, "requests_per_sec": …}}' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string(), KeySettings));

/** A job's planned model runs (duration × shifts ÷ stride) may not exceed this: twice a 60-minute song at the default options. */
const maxModelRuns = z.preprocess(blankIsUnset, int(1).default(1300));

/** Env pieces, each named as in the design; composed per service below. */
export const busEnv = z.object({
  /** Unset → the in-process bus (embedded mode). */
  AMQP_URL: opt(url(['amqp:', 'amqps:'])),
});
export const storageEnv = z.object({
  /** Unset → the filesystem store under STORAGE_ROOT. */
  S3_ENDPOINT: opt(url(['http:', 'https:'])),
  S3_ACCESS_KEY: opt(z.string().min(1)),
  S3_SECRET_KEY: opt(z.string().min(1)),
  S3_BUCKET: z.preprocess(blankIsUnset, z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name').default('stemflow')),
  S3_REGION: z.preprocess(blankIsUnset, z.string().default('us-east-1')),
  STORAGE_ROOT: z.preprocess(blankIsUnset, z.string().default('./data')),
});
/** What the object store takes (packages/storage). */
export type StorageSettings = z.infer<typeof storageEnv>;
export const jobsEnv = z.object({
  /** Unset → the embedded job store under STORAGE_ROOT. */
  DATABASE_URL: opt(url(['mongodb:', 'mongodb+srv:'])),
  JOB_TTL_HOURS: opt(int(1)),
});
export const commonEnv = z.object({
  NODE_ENV: z.preprocess(blankIsUnset, z.enum(['development', 'production', 'test']).default('development')),
  LOG_LEVEL: z.preprocess(blankIsUnset, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  OTEL_SERVICE_NAME: opt(z.string()),
  OTEL_EXPORTER_OTLP_ENDPOINT: opt(url(['http:', 'https:'])),
  OTEL_SDK_DISABLED: opt(bool),
  /** When set, /metrics (the gateway's and each worker's) answers only `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: opt(z.string().min(16, 'must be at least 16 characters')),
});
/** The largest input stored, uploaded or imported. */
const maxUploadBytes = z.preprocess(blankIsUnset, int(1).default(500 * 1024 * 1024));
/** Addresses outbound requests (imports, webhooks) may reach besides public ones. */
const outboundAllowCidrs = z.preprocess(blankIsUnset, cidrs.default([]));
/** The graph a job separates with when it does not say (quality=full|fast): set on gateways and separators alike. */
export const qualityEnv = z.object({
  DEFAULT_QUALITY: z.preprocess(blankIsUnset, z.enum(['full', 'fast']).default('fast')),
});
export const httpEnv = z.object({
  PORT: z.preprocess(blankIsUnset, int(0, 65535).default(8000)),
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
export const outboundEnv = z.object({
  /** Signs webhooks; each API key gets its own secret derived from it (GET /api/webhooks/secret). At least 32 characters. */
  WEBHOOK_SECRET: opt(z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)')),
  OUTBOUND_ALLOW_CIDRS: outboundAllowCidrs,
});
export const webhooksEnv = z.object({
  /** One delivery attempt (connect, send, the receiver's answer) within this. */
  WEBHOOK_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1, 300).default(15)),
});
export const decoderEnv = z.object({
  MAX_DURATION_SEC: z.preprocess(blankIsUnset, int(1).default(60 * 60)),
  MAX_MODEL_RUNS: maxModelRuns,
  /** Deadline of one decode, and how long ffmpeg may produce nothing before it is stopped. */
  DECODE_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1).default(600)),
  DECODE_STALL_SEC: z.preprocess(blankIsUnset, int(1).default(60)),
  /** Inputs given by URL are fetched by the decoder (the job's `importing` stage): whole within this… */
  IMPORT_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1, 3600).default(120)),
  /** …no larger than uploads may be… */
  MAX_UPLOAD_BYTES: maxUploadBytes,
  /** …from public addresses, and these. */
  OUTBOUND_ALLOW_CIDRS: outboundAllowCidrs,
});
export const separatorEnv = z.object({
  SEPARATOR_DEVICE: z.preprocess(blankIsUnset, z.enum(['auto', 'cpu', 'cuda']).default('auto')),
  /** Longest a job holds its message unacked before continuing from a fresh one (consumer timeout). */
  SEPARATOR_MAX_HOLD_SEC: z.preprocess(blankIsUnset, int(10).default(900)),
  /** ONNX Runtime intra-op threads per engine; 0 → the cores shared out among the engines. */
  SEPARATOR_THREADS: z.preprocess(blankIsUnset, int(0, 1024).default(0)),
  /** Jobs one separator runs at once, each on its own engine (model worker and session). */
  SEPARATOR_CONCURRENCY: z.preprocess(blankIsUnset, int(1, 64).default(1)),
});

const infra = commonEnv.extend(busEnv.shape).extend(storageEnv.shape).extend(jobsEnv.shape);
/** What every service shares: the engines it connects to (packages/runtime builds the adapters from it). */
export type InfraSettings = z.infer<typeof infra>;

/** One schema per deployable; `pnpm start` (all-in-one) takes the union. */
export const SERVICE_ENV = {
  gateway: infra.extend(httpEnv.shape).extend(outboundEnv.shape).extend(qualityEnv.shape),
  decoder: infra.extend(decoderEnv.shape).extend({ PORT: z.preprocess(blankIsUnset, int(0, 65535).default(8001)) }),
  separator: infra.extend(separatorEnv.shape).extend(qualityEnv.shape).extend({ PORT: z.preprocess(blankIsUnset, int(0, 65535).default(8002)) }),
  status: infra.extend({ PORT: z.preprocess(blankIsUnset, int(0, 65535).default(8003)) }),
  webhooks: infra.extend(outboundEnv.shape).extend(webhooksEnv.shape).extend({ PORT: z.preprocess(blankIsUnset, int(0, 65535).default(8004)) }),
  'all-in-one': infra.extend(httpEnv.shape).extend(decoderEnv.shape).extend(separatorEnv.shape).extend(outboundEnv.shape).extend(webhooksEnv.shape).extend(qualityEnv.shape),
} as const;
export type ServiceName = keyof typeof SERVICE_ENV;
export type ConfigOf<S extends ServiceName> = z.infer<(typeof SERVICE_ENV)[S]>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses env for a service; throws one ConfigError whose message names every bad variable. */
export function parseConfig<S extends ServiceName>(service: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const result = SERVICE_ENV[service].safeParse(env);
  if (result.success) {
    const c = result.data as Partial<ConfigOf<'all-in-one'>>;
    const unknownKeys = Object.keys(c.API_KEY_SETTINGS ?? {}).filter((k) => k !== '*' && !(c.API_KEYS ?? []).includes(k));
    if (unknownKeys.length) throw new ConfigError(`invalid ${service} configuration: API_KEY_SETTINGS names ${unknownKeys.length} key(s) that API_KEYS does not list (use "*" for every key)`);
    // The embedded server makes its own secret; a gateway must share the webhook service's.
    if (service === 'gateway' && !c.WEBHOOK_SECRET && Object.values(c.API_KEY_SETTINGS ?? {}).some((s) => s.webhook_url)) {
      throw new ConfigError('invalid gateway configuration: API_KEY_SETTINGS sets a webhook_url but WEBHOOK_SECRET is not set (the webhook service signs with it)');
    }
    return result.data as ConfigOf<S>;
  }
  const problems = result.error.issues.map((i) => {
    const name = i.path.join('.');
    const value = env[name];
    return `${name}${value === undefined ? '' : `=${JSON.stringify(redact(name, value))}`}: ${i.message}`;
  });
  throw new ConfigError(`invalid ${service} configuration: ${problems.join('; ')}`);
}

const redact = (name: string, value: string) => (/SECRET|KEY|PASSWORD|SETTINGS/.test(name) ? '***' : value.replace(/\/\/[^@/]*@/, '//***@'));

/** For main.ts: parse once; on a bad value print one clear line and exit 1. */
export function loadConfig<S extends ServiceName>(service: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  try {
    return parseConfig(service, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`stemflow ${err.message}\n`);
    process.exit(1);
  }
}

/** Names of every variable a service reads (docs, docker-compose checks). */
export const envNames = (service: ServiceName): string[] => Object.keys(SERVICE_ENV[service].shape);
