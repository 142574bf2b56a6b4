import { StemflowError, type AnyEvent } from '@stemflow/contracts';
import type { JobStore } from '@stemflow/jobs';

/** Deliveries of an event for an unknown job before it is dropped. */
export const UNKNOWN_JOB_ATTEMPTS = 4;

/**
 * Applies one event to the read model. The gateway inserts every job's document before it
 * publishes job.created, so a job the read model does not know is either not visible yet (a
 * database just restarted, a replica behind) or not ours (forged, another deployment). It is
 * retried a few times through the bus (about 20 s), then dropped with a log line.
 */
export async function projectEvent(jobs: JobStore, event: AnyEvent, attempt = 1) {
  const r = await jobs.apply(event);
  if (r.outcome === 'unknown-job') {
    const last = attempt >= UNKNOWN_JOB_ATTEMPTS;
    throw new StemflowError('UNKNOWN_JOB', `no job ${event.jobId}${last ? `: dropping its ${event.type}` : ' yet'}`, { retryable: !last });
  }
  return r.outcome;
}
