import { QUEUES, type QueueSpec } from '@stemflow/contracts';
import { openSession, type SessionOptions } from '@stemflow/models';
import type { Running } from '@stemflow/runtime';
import { timeStage, type Logger } from '@stemflow/telemetry';
import { HtdemucsEngine } from './core/index.js';
import { separateJob, type SeparateDeps } from './use-cases/separate-job.js';

export { separateJob } from './use-cases/separate-job.js';
export { HtdemucsEngine } from './core/index.js';

/** Loads the model (checked by sha256) and opens an engine on it. */
export async function loadEngine(o: Omit<SessionOptions, 'log'> & { log: Logger }): Promise<{ engine: HtdemucsEngine; device: 'cpu' | 'cuda' }> {
  const { session, device } = await openSession({ ...o, log: (m) => o.log.warn(m) });
  o.log.info({ device, threads: o.threads || 'all cores' }, 'model loaded');
  return { engine: new HtdemucsEngine(session, device), device };
}

/** One model instance, one job at a time (the queue's prefetch is 1). */
export async function startSeparator(d: SeparateDeps, queue: QueueSpec = QUEUES.separator): Promise<Running> {
  const sub = await d.bus.subscribe(queue, { 'job.decoded': (e) => timeStage('separate', () => separateJob(d, e)) });
  return { stop: () => sub.close() };
}
