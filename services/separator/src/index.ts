import { availableParallelism, totalmem } from 'node:os';
import { watchCancellations } from '@stemflow/bus';
import { QUEUES, StemflowError, type QueueSpec } from '@stemflow/contracts';
import { isMarkedCanceled } from '@stemflow/storage';
import type { Quality, SessionOptions } from '@stemflow/models';
import type { Check, Running } from '@stemflow/runtime';
import { timeStage, type Logger } from '@stemflow/telemetry';
import { HtdemucsEngine, QualityRunner, supervisedRunner, workerRunner } from './core/index.js';
import { separateJob, type SeparateDeps } from './use-cases/separate-job.js';

export { separateJob } from './use-cases/separate-job.js';
export { HtdemucsEngine } from './core/index.js';

/**
 * Peak resident memory per engine (its session and the tensors of a run, arena off), rounded up
 * from `pnpm bench throughput`: one engine's process peaks at 2.91 GiB (full) and 2.81 GiB (fast),
 * two full engines' at 5.35 GiB. The same at either quality: the int8 weights are smaller, a
 * run's activations are not (and a job may switch an engine to either).
 */
export const ENGINE_MEMORY_GIB = 2.8;

/**
 * Loads the model (checked by sha256) in worker threads and opens `concurrency` engines on them,
 * one job each: the model runs there, this thread keeps the bus, HTTP, checkpoints and the DSP of
 * the chunks around it. Threads per session: `threads`, or the cores shared out. `quality` is the
 * graph each loads first (the jobs' default); a job asking for the other switches its engine's.
 * Refused at start when the machine's memory cannot hold the engines.
 */
export async function loadEngines(o: Omit<SessionOptions, 'log'> & { log: Logger; concurrency?: number; memoryBytes?: number }): Promise<{ engines: HtdemucsEngine[]; device: 'cpu' | 'cuda'; health: Check; models: QualityRunner[] }> {
  const { log, concurrency = 1, memoryBytes = availableMemory(), ...options } = o;
  const quality = o.quality ?? 'full';
  const need = concurrency * ENGINE_MEMORY_GIB * 2 ** 30;
  if (need > memoryBytes) {
    throw new StemflowError('MODEL_UNAVAILABLE', `SEPARATOR_CONCURRENCY=${concurrency} needs about ${(need / 2 ** 30).toFixed(1)} GiB (${ENGINE_MEMORY_GIB} GiB per engine), and this machine has ${(memoryBytes / 2 ** 30).toFixed(1)} GiB: run fewer jobs at once`, { status: 500 });
  }
  const threads = options.threads > 0 ? options.threads : Math.max(1, Math.floor(availableParallelism() / concurrency));
  const start = async (q: Quality) => {
    const one = () => workerRunner({ ...options, threads, quality: q, log: (m) => log.warn(m) });
    return supervisedRunner(await one(), one, (m) => log.error(m));
  };
  const models: QualityRunner[] = [];
  try {
    for (let i = 0; i < concurrency; i++) models.push(await QualityRunner.open(quality, start));
  } catch (err) {
    await Promise.all(models.map((m) => m.close()));
    throw err;
  }
  log.info({ device: models[0]!.device, quality, engines: concurrency, threads, thread: 'worker' }, 'model loaded');
  // A worker that died is replaced on the next run: health says so, and stays up.
  const health: Check = {
    name: 'model',
    check: async () => ({
      ok: true,
      detail: models
        .map((m, i) => {
          const r = m.current;
          return `${concurrency > 1 ? `engine ${i + 1}: ` : ''}htdemucs (${m.quality}) on ${r.device} in a worker thread, ${threads} thread${threads > 1 ? 's' : ''}${r.restarts ? `; restarted ${r.restarts}× (last: ${r.lastFailure})` : ''}`;
        })
        .join('; '),
    }),
  };
  return { engines: models.map((m) => new HtdemucsEngine(m)), device: models[0]!.device, health, models };
}

/** One engine (the CLI, tests). */
export async function loadEngine(o: Omit<SessionOptions, 'log'> & { log: Logger }): Promise<{ engine: HtdemucsEngine; device: 'cpu' | 'cuda'; health: Check; models: QualityRunner }> {
  const r = await loadEngines({ ...o, concurrency: 1 });
  return { engine: r.engines[0]!, device: r.device, health: r.health, models: r.models[0]! };
}

/** The memory this process may use: its cgroup's limit when there is one (Node reads it), else the machine's. */
function availableMemory(): number {
  const limit = process.constrainedMemory();
  return limit > 0 && limit < totalmem() ? limit : totalmem();
}

/**
 * Jobs in flight, one per engine (each its own model worker and session): the queue's prefetch is
 * the number of engines, and each delivery takes a free engine for the whole job. Cancellations
 * are watched on the separator's own queue and in the store.
 */
export async function startSeparator(deps: Omit<SeparateDeps, 'cancels' | 'engine'> & ({ engine: HtdemucsEngine } | { engines: HtdemucsEngine[] }), queue: QueueSpec = QUEUES.separator): Promise<Running> {
  const pool = new EnginePool('engines' in deps ? deps.engines : [deps.engine]);
  const cancels = await watchCancellations(deps.bus, { marked: isMarkedCanceled(deps.blobs) });
  let draining = false;
  const sub = await deps.bus.subscribe({ ...queue, prefetch: pool.size }, {
    'job.decoded': (e) => pool.with((engine) => timeStage('separate', () => separateJob({ ...deps, cancels, engine, draining: () => draining }, e))),
  });
  return {
    // Stopping hands every job in flight back at its next chunk boundary (checkpointed), then waits
    // for those handlers before the channel closes — an encode in progress as long as a job may be
    // held — so a rollout loses no model run.
    stop: async () => {
      draining = true;
      await sub.close(deps.maxHoldMs);
      await cancels.close();
    },
  };
}

/** Engines lent to one job at a time; a job that finds none free waits for one. */
class EnginePool {
  private readonly free: HtdemucsEngine[];
  private readonly waiting: ((e: HtdemucsEngine) => void)[] = [];
  constructor(engines: HtdemucsEngine[]) {
    if (!engines.length) throw new Error('a separator needs at least one engine');
    this.free = [...engines];
    this.size = engines.length;
  }
  readonly size: number;
  async with<T>(fn: (e: HtdemucsEngine) => Promise<T>): Promise<T> {
    const engine = this.free.pop() ?? (await new Promise<HtdemucsEngine>((r) => this.waiting.push(r)));
    try {
      return await fn(engine);
    } finally {
      const next = this.waiting.shift();
      if (next) next(engine);
      else this.free.push(engine);
    }
  }
}
