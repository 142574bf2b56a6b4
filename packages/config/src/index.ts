/**
 * Configuration from the environment: the value types (URLs, ports, key lists, networks), the
 * pieces every service shares (bus, store, job store, logging, telemetry, outbound requests, the
 * default quality), and parsing with one clear line per bad variable. Each service composes its
 * own schema from these in its src/config.ts, beside the code that reads it.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

export const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
export const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
export const blankIsUnset = (v: unknown) => (v === '' ? undefined : v);
export const opt = <T extends z.ZodType>(s: T) => z.preprocess(blankIsUnset, s.optional());

/**
 * Bearer tokens: RFC 6750's token characters only (a header carries bytes, and a key that is not
 * ASCII could never be sent as itself), no empty entries (`API_KEYS=","` must not turn
 * authentication off), no duplicates.
 */
export const apiKeys = z.string().transform((s, ctx) => {
  const keys = s.split(',').map((k) => k.trim());
  if (keys.some((k) => k === '')) ctx.addIssue({ code: 'custom', message: 'has an empty key (two commas, a trailing comma, or only spaces): list keys separated by single commas' });
  else if (keys.some((k) => !/^[A-Za-z0-9\-._~+/]+=*$/.test(k))) ctx.addIssue({ code: 'custom', message: 'keys may contain only ASCII letters, digits and - . _ ~ + / (then =), as bearer tokens do' });
  else if (new Set(keys).size !== keys.length) ctx.addIssue({ code: 'custom', message: 'lists a key twice' });
  return keys;
});

/** Networks outbound requests (webhooks, imports by URL) may reach besides public addresses: `127.0.0.1/32,::1`. */
export const cidrs = z.string().transform((s, ctx) => {
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
export const corsOrigins = z.string().transform((s, ctx) => {
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
export const keySettings = z
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
export const maxModelRuns = z.preprocess(blankIsUnset, int(1).default(1300));

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
export const maxUploadBytes = z.preprocess(blankIsUnset, int(1).default(500 * 1024 * 1024));
/** Addresses outbound requests (imports, webhooks) may reach besides public ones. */
export const outboundAllowCidrs = z.preprocess(blankIsUnset, cidrs.default([]));
/** The graph a job separates with when it does not say (quality=full|fast): set on gateways and separators alike. */
export const qualityEnv = z.object({
  DEFAULT_QUALITY: z.preprocess(blankIsUnset, z.enum(['full', 'fast']).default('fast')),
});
export const outboundEnv = z.object({
  /** Signs webhooks; each API key gets its own secret derived from it (GET /api/webhooks/secret). At least 32 characters. */
  WEBHOOK_SECRET: opt(z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)')),
  OUTBOUND_ALLOW_CIDRS: outboundAllowCidrs,
});
export const infraEnv = commonEnv.extend(busEnv.shape).extend(storageEnv.shape).extend(jobsEnv.shape);
/** What every service shares: the engines it connects to (packages/runtime builds the adapters from it). */
export type InfraSettings = z.infer<typeof infraEnv>;

/**
 * A deployable's configuration: its name (in messages), its env schema — the shared pieces above
 * extended with its own, in its service's config.ts — and any check across variables.
 */
export type ServiceConfig<Z extends z.ZodObject = z.ZodObject> = { name: string; schema: Z; check?: (config: z.infer<Z>) => string | undefined };
export const defineService = <Z extends z.ZodObject>(name: string, schema: Z, check?: (config: z.infer<Z>) => string | undefined): ServiceConfig<Z> => ({ name, schema, ...(check ? { check } : {}) });
export type ConfigOf<S extends ServiceConfig> = z.infer<S['schema']>;

/** A listen port with a service's default. */
export const port = (dflt: number) => z.preprocess(blankIsUnset, int(0, 65535).default(dflt));

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses env for a service; throws one ConfigError whose message names every bad variable. */
export function parseConfig<S extends ServiceConfig>(service: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const result = service.schema.safeParse(env);
  if (result.success) {
    const problem = service.check?.(result.data);
    if (problem) throw new ConfigError(`invalid ${service.name} configuration: ${problem}`);
    return result.data as ConfigOf<S>;
  }
  const problems = result.error.issues.map((i) => {
    const name = i.path.join('.');
    const value = env[name];
    return `${name}${value === undefined ? '' : `=${JSON.stringify(redact(name, value))}`}: ${i.message}`;
  });
  throw new ConfigError(`invalid ${service.name} configuration: ${problems.join('; ')}`);
}

const redact = (name: string, value: string) => (/SECRET|KEY|PASSWORD|SETTINGS/.test(name) ? '***' : value.replace(/\/\/[^@/]*@/, '//***@'));

/** For main.ts: parse once; on a bad value print one clear line and exit 1. */
export function loadConfig<S extends ServiceConfig>(service: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  try {
    return parseConfig(service, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`stemflow ${err.message}\n`);
    process.exit(1);
  }
}

/** Names of every variable a service reads (docs, deployment checks). */
export const envNames = (service: ServiceConfig): string[] => Object.keys(service.schema.shape);
