/**
 * What every deployable shares: adapters chosen by configuration, and one lifecycle (start,
 * graceful shutdown on SIGTERM/SIGINT, a second signal exits at once).
 */
import { InMemoryBus, RabbitBus, type EventBus } from '@stemflow/bus';
import { infraEnv, loadConfig, type ConfigOf, type InfraSettings, type ServiceConfig } from '@stemflow/config';
import { createJobStore, type JobStore } from '@stemflow/jobs';
import { createBlobStore, type BlobStore } from '@stemflow/storage';
import { QUEUES, describeError } from '@stemflow/contracts';
import { ffmpegVersions } from '@stemflow/audio';
import { createLogger, registerJobsByStatus, registerQueueDepth, startTelemetry, type Logger } from '@stemflow/telemetry';

export type Adapters = { bus: EventBus; blobs: BlobStore; jobs: JobStore };
/** Health checks beyond the adapters (ffmpeg's version where a process needs it). */
export type Running = { stop: () => Promise<void> };
type AnyConfig = InfraSettings;

/** RabbitMQ / S3 / MongoDB when their URLs are set; in-process, filesystem, embedded otherwise. */
export async function createAdapters(c: InfraSettings, log: Logger, service?: string): Promise<Adapters> {
  const bus: EventBus = c.AMQP_URL ? await RabbitBus.connect({ url: c.AMQP_URL, log: log.child({ component: 'bus' }), ...(service ? { name: `stemflow-${service}` } : {}) }) : new InMemoryBus({ log: log.child({ component: 'bus' }) });
  const blobs = createBlobStore(c);
  const jobs = await createJobStore(c);
  log.info(
    { bus: c.AMQP_URL ? 'rabbitmq' : 'in-process', store: c.S3_ENDPOINT ? 's3' : 'filesystem', jobs: c.DATABASE_URL ? 'mongodb' : 'embedded' },
    'adapters ready',
  );
  return { bus, blobs, jobs };
}

export async function closeAdapters(a: Adapters): Promise<void> {
  await a.bus.close();
  await a.jobs.close();
}

/** Runs one deployable: config → telemetry → adapters → start; stops cleanly on a signal. */
export async function runService<S extends ServiceConfig<typeof infraEnv>>(
  service: S,
  start: (ctx: { config: ConfigOf<S>; log: Logger; adapters: Adapters; checks: Check[] }) => Promise<Running>,
  opts: {
    /** Workers without an HTTP API serve /api/health and /livez on PORT. */
    healthServer?: boolean;
    /** The process decodes or encodes: it refuses to start without ffmpeg and ffprobe. */
    needsFfmpeg?: boolean;
  } = {},
): Promise<void> {
  const name = service.name;
  const config = loadConfig(service);
  const telemetry = startTelemetry(`stemflow-${name}`);
  const log = createLogger(name, (config as AnyConfig).LOG_LEVEL);
  if (!telemetry.early && (config as AnyConfig).OTEL_SDK_DISABLED !== true) {
    log.warn('OpenTelemetry started after the instrumented modules loaded: traces lack the HTTP, S3 and MongoDB spans (start the process with --import @stemflow/telemetry/register, as the start scripts do)');
  }
  const extra: Check[] = [];
  if (opts.needsFfmpeg) {
    try {
      const v = await ffmpegVersions();
      extra.push({ name: 'ffmpeg', check: async () => ({ ok: true, detail: `ffmpeg ${v.ffmpeg}, ffprobe ${v.ffprobe}` }) });
    } catch (err) {
      process.stderr.write(`stemflow ${name} cannot start: ${describeError(err)}\n`);
      process.exit(1);
    }
  }
  let adapters: Adapters;
  try {
    adapters = await createAdapters(config, log, name);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot start');
    process.exit(1);
  }
  registerQueueDepth((q) => adapters.bus.depth(q), Object.values(QUEUES).map((q) => q.name));
  if (name === 'status' || name === 'gateway' || name === 'all-in-one') registerJobsByStatus(() => adapters.jobs.countByStatus());
  const checks = [...adapterChecks(adapters), ...extra];
  const svc = await start({ config, log, adapters, checks });
  const http = opts.healthServer ? await startHealthServer((config as { PORT: number }).PORT, checks, (config as { METRICS_TOKEN?: string }).METRICS_TOKEN) : undefined;
  const running: Running = {
    stop: async () => {
      http?.close();
      await svc.stop();
    },
  };
  log.info({ port: (config as { PORT?: number }).PORT }, `${name} ready`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping: finishing in-flight work');
    try {
      await running.stop();
      await closeAdapters(adapters);
      await telemetry.shutdown();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
export { startHealthServer, runChecks, adapterChecks, metricsAllowed, type Check } from './health.js';
import { adapterChecks, startHealthServer, type Check } from './health.js';
