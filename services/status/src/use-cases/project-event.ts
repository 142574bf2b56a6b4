import { StemflowError, type AnyEvent } from '@stemflow/contracts';
import type { JobStore } from '@stemflow/jobs';

/**
 * Applies one event to the read model. The gateway inserts every job's document before it
 * publishes job.created, so an event for a job the read model has never seen (nor deleted) is
 * not ours: forged, or from another deployment. It is dropped with a log line, not retried.
 */
export async function projectEvent(jobs: JobStore, event: AnyEvent) {
  const r = await jobs.apply(event);
  if (r.outcome === 'unknown-job') {
    throw new StemflowError('UNKNOWN_JOB', `no job ${event.jobId}: dropping its ${event.type}`);
  }
  return r.outcome;
}
