import { StemflowError, type AnyEvent } from '@stemflow/contracts';
import type { JobStore } from '@stemflow/jobs';

/**
 * Applies one event to the read model. An event for a job whose job.created has not been
 * projected yet is retried later through the bus (so order is restored, never guessed).
 */
export async function projectEvent(jobs: JobStore, event: AnyEvent) {
  const r = await jobs.apply(event);
  if (r.outcome === 'unknown-job') {
    throw new StemflowError('JOB_NOT_YET_KNOWN', `job ${event.jobId} has no job.created yet`, { retryable: true });
  }
  return r.outcome;
}
