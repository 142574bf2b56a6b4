import { RabbitBus } from '@stemflow/bus';
import { QUEUES, type QueueSpec } from '@stemflow/contracts';
import { MongoJobStore } from '@stemflow/jobs';
import { FsBlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { startStatus } from '@stemflow/status';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { engineEnv, unique } from './env.js';
import { deleteQueues, withChannel } from './rabbit.js';

/** An isolated copy of the status queue (same bindings, retry and single-active-consumer). */
export const statusQueue = (retry?: QueueSpec['retry']): QueueSpec => ({ ...QUEUES.status, name: `test.status.${uuidv7()}`, ...(retry ? { retry } : {}) });
export const mongoUrl = () => engineEnv('DATABASE_URL').replace(/\/[^/]*$/, `/${unique('status').replace(/-/g, '_')}`);

/** A status service on the real broker and database, as its own replica. */
export async function statusReplica(queue: QueueSpec, dbUrl: string) {
  const bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL'), queues: [queue] });
  const jobs = await MongoJobStore.connect(dbUrl);
  const blobs = new FsBlobStore(mkdtempSync(join(tmpdir(), 'status-')));
  const svc = await startStatus({ bus, jobs, blobs }, createLogger('status', 'silent'), { queue });
  return {
    bus,
    jobs,
    stop: async () => {
      await svc.stop();
      await bus.close();
      await jobs.close();
    },
  };
}

export const dropQueue = (q: QueueSpec) => withChannel((ch) => deleteQueues(ch, q));
