import { watchCancellations } from '@stemflow/bus';
import { QUEUES, type QueueSpec } from '@stemflow/contracts';
import { isMarkedCanceled } from '@stemflow/storage';
import type { SessionOptions } from '@stemflow/models';
import type { Check, Running } from '@stemflow/runtime';
import { timeStage, type Logger } from '@stemflow/telemetry';
import { HtdemucsEngine, supervisedRunner, workerRunner, type SupervisedRunner, type WorkerRunner } from './core/index.js';
import { separateJob, type SeparateDeps } from './use-cases/separate-job.js';

export { separateJob } from './use-cases/separate-job.js';
export { HtdemucsEngine } from './core/index.js';

/**
 * Loads the model (checked by sha256) in a worker thread and opens an engine on it: the model
 * runs there, this thread keeps the bus, HTTP, checkpoints and the DSP of the chunks around it.
 */
export async function loadEngine(o: Omit<SessionOptions, 'log'> & { log: Logger }): Promise<{ engine: HtdemucsEngine; device: 'cpu' | 'cuda'; health: Check; runner: SupervisedRunner<WorkerRunner> }> {
  const { log, ...options } = o;
  const start = () => workerRunner({ ...options, log: (m) => log.warn(m) });
  const runner = supervisedRunner(await start(), start, (m) => log.error(m));
  log.info({ device: runner.device, threads: o.threads || 'all cores', thread: 'worker' }, 'model loaded');
  // A worker that died is replaced on the next run: health says so, and stays up.
  const health: Check = {
    name: 'model',
    check: async () => ({ ok: true, detail: `htdemucs on ${runner.device} in a worker thread${runner.restarts ? `; restarted ${runner.restarts}× (last: ${runner.lastFailure})` : ''}` }),
  };
  return { engine: new HtdemucsEngine(runner), device: runner.device, health, runner };
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
