import { watchCancellations } from '@stemflow/bus';
import { QUEUES, type QueueSpec } from '@stemflow/contracts';
import { isMarkedCanceled } from '@stemflow/storage';
import type { SessionOptions } from '@stemflow/models';
import type { Running } from '@stemflow/runtime';
import { timeStage, type Logger } from '@stemflow/telemetry';
import { HtdemucsEngine, workerRunner } from './core/index.js';
import { separateJob, type SeparateDeps } from './use-cases/separate-job.js';

export { separateJob } from './use-cases/separate-job.js';
export { HtdemucsEngine } from './core/index.js';

/**
 * Loads the model (checked by sha256) in a worker thread and opens an engine on it: the model
 * runs there, this thread keeps the bus, HTTP, checkpoints and the DSP of the chunks around it.
 */
export async function loadEngine(o: Omit<SessionOptions, 'log'> & { log: Logger }): Promise<{ engine: HtdemucsEngine; device: 'cpu' | 'cuda' }> {
  const { log, ...options } = o;
  const runner = await workerRunner({ ...options, log: (m) => log.warn(m) });
  log.info({ device: runner.device, threads: o.threads || 'all cores', thread: 'worker' }, 'model loaded');
  return { engine: new HtdemucsEngine(runner), device: runner.device };
}

/** One model instance, one job at a time (the queue's prefetch is 1); cancellations watched on its own queue and in the store. */
export async function startSeparator(d: Omit<SeparateDeps, 'cancels'>, queue: QueueSpec = QUEUES.separator): Promise<Running> {
  const cancels = await watchCancellations(d.bus, { marked: isMarkedCanceled(d.blobs) });
  const deps: SeparateDeps = { ...d, cancels };
  const sub = await d.bus.subscribe(queue, { 'job.decoded': (e) => timeStage('separate', () => separateJob(deps, e)) });
  return {
    stop: async () => {
      await sub.close();
      await cancels.close();
    },
  };
}
