import { availableParallelism, totalmem } from 'node:os';
import { watchCancellations } from '@stemflow/bus';
import { QUEUES, StemflowError, type QueueSpec } from '@stemflow/contracts';
import { isMarkedCanceled } from '@stemflow/storage';
import { MODEL_NODE_OPTIONS, v8PoolOne, type Quality, type SessionOptions } from '@stemflow/models';
import type { Check, Running } from '@stemflow/runtime';
import { openAll } from '@stemflow/runtime/resources';
import { separatorEngines, timeStage, type Logger } from '@stemflow/telemetry';
import { HtdemucsEngine, ModelPool, QualityRunner, supervisedRunner, warmUp, workerRunner } from './core/index.js';
import { separateJob, type SeparateDeps } from './use-cases/separate-job.js';

export { separateJob } from './use-cases/separate-job.js';
export { HtdemucsEngine, ModelPool } from './core/index.js';

/**
 * Peak resident memory per engine (its session and the tensors of a run, arena off), rounded up
 * from `pnpm bench throughput`: one engine's process peaks at 2.85-2.91 GiB with the full graph and
 * 1.90 GiB with the fast one (its fused attention keeps no score matrices, its rewritten norms and
 * gates fewer large intermediates), two full engines' at
 * 5.35 GiB. Sized for the full graph: a job may switch any engine to it.
 */
export const ENGINE_MEMORY_GIB = 2.8;

/**
 * Engines a separator opens when SEPARATOR_ENGINES is 0: one per core, or per `threads` cores when
 * those are set, as many as half the memory holds (the rest is the process's and the machine's),
 * at least one; on a GPU, one (a session fills the device). Measured on 2 cores (`pnpm bench
 * throughput`, `pnpm bench separate`): a queue of jobs, and a lone job too, goes faster through two
 * one-thread sessions than through one two-thread session — the main thread's DSP and encoding
 * preempt one of a session's threads, and a two-thread session's every operator then waits for
 * it, where a one-thread session only loses that time. So the CLI opens the same engines.
 */
export function autoEngines(cores: number, memoryBytes: number, threads = 0): number {
  const byCores = Math.floor(cores / (threads > 0 ? threads : 1));
  return Math.max(1, Math.min(byCores, Math.floor(memoryBytes / 2 / (ENGINE_MEMORY_GIB * 2 ** 30))));
}

/**
 * Loads the model (checked by sha256) in worker threads, one session each: `engines` of them
 * (0 → autoEngines), pooled. The model runs there; this thread keeps the bus, HTTP, checkpoints
 * and the DSP of the chunks around it. Threads per session: `threads`, or the cores shared out.
 * `quality` is the graph each loads first (the jobs' default); a run of the other quality switches
 * the session it gets. Refused at start when the machine's memory cannot hold the engines.
 */
export async function loadEngines(o: Omit<SessionOptions, 'log'> & { log: Logger; engines?: number; memoryBytes?: number }): Promise<{ pool: ModelPool; device: 'cpu' | 'cuda'; health: Check; models: QualityRunner[] }> {
  const { log, engines: asked = 0, memoryBytes = availableMemory(), ...options } = o;
  const quality = o.quality ?? 'full';
  const cores = availableParallelism();
  const need = asked * ENGINE_MEMORY_GIB * 2 ** 30;
  if (need > memoryBytes) {
    throw new StemflowError('MODEL_UNAVAILABLE', `SEPARATOR_ENGINES=${asked} needs about ${(need / 2 ** 30).toFixed(1)} GiB (${ENGINE_MEMORY_GIB} GiB per engine), and this machine has ${(memoryBytes / 2 ** 30).toFixed(1)} GiB: run fewer engines`, { status: 500 });
  }
  const start = (threads: number) => async (q: Quality) => {
    const one = () => workerRunner({ ...options, threads, quality: q, log: (m) => log.warn(m) });
    return supervisedRunner(await one(), one, (m) => log.error(m));
  };
  let count = asked > 0 ? asked : autoEngines(cores, memoryBytes, options.threads);
  const threads = options.threads > 0 ? options.threads : Math.max(1, Math.floor(cores / count));
  const models: QualityRunner[] = [];
  if (!v8PoolOne()) log.warn(`node started without ${MODEL_NODE_OPTIONS}: V8's collector threads will outrank the model's, and a lone job's host time beside the model runs grows by about a third (start the process with it, as the start scripts do)`);
  // The chunks' DSP warms up in this thread while the model loads in the workers.
  const warm = warmUp();
  warm.catch(() => {}); // awaited below, unless loading the model fails first
  try {
    // The first alone: on a GPU (SEPARATOR_DEVICE=auto found one) an automatic count is one.
    models.push(await QualityRunner.open(quality, start(threads)));
    if (asked === 0 && models[0]!.device === 'cuda') count = 1;
    models.push(...(await openAll(Array.from({ length: count - 1 }, () => QualityRunner.open(quality, start(threads))), (m) => m.close())));
    await warm;
  } catch (err) {
    await Promise.all(models.map((m) => m.close()));
    throw err;
  }
  log.info({ device: models[0]!.device, quality, engines: count, threads, thread: 'worker' }, 'model loaded');
  separatorEngines.set(count);
  // A worker that died is replaced on the next run: health says so, and stays up.
  const health: Check = {
    name: 'model',
    check: async () => ({
      ok: true,
      detail: models
        .map((m, i) => {
          const r = m.current;
          return `${count > 1 ? `engine ${i + 1}: ` : ''}htdemucs (${m.quality}) on ${r.device} in a worker thread, ${threads} thread${threads > 1 ? 's' : ''}${r.restarts ? `; restarted ${r.restarts}× (last: ${r.lastFailure})` : ''}`;
        })
        .join('; '),
    }),
  };
  return { pool: new ModelPool(models), device: models[0]!.device, health, models };
}

/** One engine, outside a pool (tests). */
export async function loadEngine(o: Omit<SessionOptions, 'log'> & { log: Logger }): Promise<{ engine: HtdemucsEngine; device: 'cpu' | 'cuda'; health: Check; models: QualityRunner }> {
  const r = await loadEngines({ ...o, engines: 1 });
  return { engine: new HtdemucsEngine(r.models[0]!), device: r.device, health: r.health, models: r.models[0]! };
}

/** The memory this process may use: its cgroup's limit when there is one (Node reads it), else the machine's. */
function availableMemory(): number {
  const limit = process.constrainedMemory();
  return limit > 0 && limit < totalmem() ? limit : totalmem();
}

/**
 * Jobs in flight (`concurrency`, the queue's prefetch; default: one more than the engines, so the
 * next job's first chunk and the last one's stems overlap the model), their model runs on the
 * pool's engines — a job alone on all of them, an earlier job's runs before a later one's — or
 * every job on one given engine (tests). Cancellations are watched on the separator's own queue
 * and in the store.
 */
export async function startSeparator(deps: Omit<SeparateDeps, 'cancels' | 'engine'> & ({ engine: HtdemucsEngine } | { pool: ModelPool }) & { concurrency?: number }, queue: QueueSpec = QUEUES.separator): Promise<Running> {
  const cancels = await watchCancellations(deps.bus, { marked: isMarkedCanceled(deps.blobs) });
  let draining = false;
  let jobs = 0;
  const engineFor = 'pool' in deps ? () => new HtdemucsEngine(deps.pool.lease(jobs++)) : () => deps.engine;
  const prefetch = deps.concurrency || ('pool' in deps ? deps.pool.size + 1 : 1);
  const sub = await deps.bus.subscribe({ ...queue, prefetch }, {
    'job.decoded': (e) => timeStage('separate', () => separateJob({ ...deps, cancels, engine: engineFor(), draining: () => draining }, e)),
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
