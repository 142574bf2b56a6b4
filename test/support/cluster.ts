/**
 * stemflow as deployed: each service its own process on the real engines, with a bucket and a
 * database of its own, plus what a test needs to look inside: the store and the read model
 * directly, and a tap on the exchange that records every terminal event (exactly-once checks).
 */
import { RabbitBus } from '@stemflow/bus';
import type { EventOf, QueueSpec } from '@stemflow/contracts';
import { MongoJobStore } from '@stemflow/jobs';
import { S3BlobStore } from '@stemflow/storage';
import { v7 as uuidv7 } from 'uuid';
import { engineEnv, unique } from './env.js';
import { ServiceProcess, type Service } from './processes.js';
import { deleteQueues, purgeStemflowQueues, withChannel } from './rabbit.js';

type Name = Exclude<Service, 'all-in-one'>;
export type Cluster = {
  api: string;
  env: Record<string, string>;
  services: Partial<Record<Name, ServiceProcess>>;
  blobs: S3BlobStore;
  jobs: MongoJobStore;
  bus: RabbitBus;
  /** Terminal events seen on the exchange, by job id, in arrival order. */
  terminal: Map<string, (EventOf<'job.completed'> | EventOf<'job.failed'> | EventOf<'job.canceled'>)[]>;
  stop: () => Promise<void>;
};

let nextPort = 20_000 + (process.pid % 500) * 8;

/** Starts the named services (default all four) on the real engines; purges stemflow's queues first. */
export async function startCluster(opts: { services?: Name[]; env?: Record<string, string>; serviceEnv?: Partial<Record<Name, Record<string, string>>> } = {}): Promise<Cluster> {
  // Earlier tests may leave events for jobs of their own in the shared queues: start clean.
  await purgeStemflowQueues();
  const bucket = unique('cl').toLowerCase();
  const db = engineEnv('DATABASE_URL').replace(/\/[^/]*$/, `/${unique('cl').replace(/-/g, '_')}`);
  const env: Record<string, string> = {
    AMQP_URL: engineEnv('AMQP_URL'),
    S3_ENDPOINT: engineEnv('S3_ENDPOINT'),
    S3_ACCESS_KEY: engineEnv('S3_ACCESS_KEY'),
    S3_SECRET_KEY: engineEnv('S3_SECRET_KEY'),
    S3_BUCKET: bucket,
    DATABASE_URL: db,
    OTEL_SDK_DISABLED: 'true',
    LOG_LEVEL: 'info',
    ...opts.env,
  };
  const base = nextPort;
  nextPort += 5;
  const names = opts.services ?? ['status', 'decoder', 'separator', 'gateway'];
  const ports: Record<Name, number> = { gateway: base, decoder: base + 1, separator: base + 2, status: base + 3, webhooks: base + 4 };
  const services: Partial<Record<Name, ServiceProcess>> = {};
  for (const n of names) services[n] = new ServiceProcess(n, { ...env, ...opts.serviceEnv?.[n] }, ports[n]);
  await Promise.all(Object.values(services).map((s) => s.start()));

  const blobs = new S3BlobStore({ endpoint: env.S3_ENDPOINT!, accessKey: env.S3_ACCESS_KEY!, secretKey: env.S3_SECRET_KEY!, bucket });
  const jobs = await MongoJobStore.connect(db);
  const bus = await RabbitBus.connect({ url: env.AMQP_URL! });
  const tap: QueueSpec = { name: `test.tap.${uuidv7()}`, bindings: ['job.completed', 'job.failed', 'job.canceled'], prefetch: 50, retry: { maxAttempts: 1, delaysMs: [100] }, stage: 't', failJobOnGiveUp: false, description: 'test tap' };
  const terminal: Cluster['terminal'] = new Map();
  const record = async (e: EventOf<'job.completed'> | EventOf<'job.failed'> | EventOf<'job.canceled'>) => {
    terminal.set(e.jobId, [...(terminal.get(e.jobId) ?? []), e]);
  };
  await bus.subscribe(tap, { 'job.completed': record, 'job.failed': record, 'job.canceled': record });
  return {
    api: `http://127.0.0.1:${ports.gateway}`,
    env,
    services,
    blobs,
    jobs,
    bus,
    terminal,
    stop: async () => {
      await Promise.all(Object.values(services).map((s) => s.kill('SIGTERM')));
      await bus.close();
      await withChannel((ch) => deleteQueues(ch, tap));
      await blobs.deletePrefix('').catch(() => {});
      await jobs.close();
    },
  };
}

/** Objects under jobs/ that belong to no job in the read model (must stay empty). */
export async function orphanObjects(c: Pick<Cluster, 'blobs' | 'jobs'>): Promise<string[]> {
  const orphans: string[] = [];
  for (const b of await c.blobs.list('jobs/')) {
    const id = /^jobs\/([^/]+)\//.exec(b.key)?.[1];
    if (!id || !(await c.jobs.get(id))) orphans.push(b.key);
  }
  return orphans;
}
