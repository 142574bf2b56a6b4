import { QUEUES, EVENT_NAMES, type AnyEvent, type QueueSpec } from '@stemflow/contracts';
import type { Handlers } from '@stemflow/bus';
import type { Adapters, Running } from '@stemflow/runtime';
import type { Logger } from '@stemflow/telemetry';
import { expireJobs } from './use-cases/expire-jobs.js';
import { discardWork } from './use-cases/discard-work.js';
import { projectEvent } from './use-cases/project-event.js';

export type StatusOptions = { jobTtlHours?: number | undefined; sweepEveryMs?: number; /** Tests run isolated copies. */ queue?: QueueSpec };

/** The status service: the only writer of the job read model. */
export async function startStatus(adapters: Adapters, log: Logger, options: StatusOptions = {}): Promise<Running> {
  const handlers: Handlers = {};
  for (const name of EVENT_NAMES) {
    (handlers as Record<string, (e: AnyEvent) => Promise<void>>)[name] = async (e) => {
      const { outcome, job } = await projectEvent(adapters.jobs, e);
      log.debug({ jobId: e.jobId, event: e.type, outcome }, 'projected');
      if (outcome === 'applied' && (job?.status === 'failed' || job?.status === 'canceled')) {
        // Best effort: what is not removed now goes at the job's expiry.
        await discardWork(adapters.blobs, e.jobId).then(
          (n) => n && log.info({ jobId: e.jobId, status: job.status, objects: n }, 'removed the work of a job that ended without stems'),
          (err: Error) => log.warn({ jobId: e.jobId, err: err.message }, 'could not remove the work of an ended job; it goes at its expiry'),
        );
      }
    };
  }
  const sub = await adapters.bus.subscribe(options.queue ?? QUEUES.status, handlers);

  let timer: NodeJS.Timeout | undefined;
  if (options.jobTtlHours) {
    const ttl = options.jobTtlHours;
    const sweep = async () => {
      try {
        const n = await expireJobs(adapters, ttl);
        if (n) log.info({ removed: n, ttlHours: ttl }, 'expired old jobs');
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'job expiry sweep failed, will try again');
      }
    };
    timer = setInterval(sweep, options.sweepEveryMs ?? 10 * 60_000);
    void sweep();
  }
  return {
    stop: async () => {
      clearInterval(timer);
      await sub.close();
    },
  };
}
