import { StemflowError, isFinished, type AnyEvent } from '@stemflow/contracts';
import { type JobStore } from '@stemflow/jobs';
import { stageDuration } from '@stemflow/telemetry';

/**
 * Applies one event to the read model. The gateway inserts every job's document before it
 * publishes job.created, so a job the read model cannot see is most likely not visible yet (a
 * database that just restarted, a replica behind): the event goes through the bus's retry path,
 * and only an event that never finds its job (forged, another deployment) ends in the parking
 * queue. The attempt count cannot tell the two apart: it also counts retries while the database
 * was down.
 */
export async function projectEvent(jobs: JobStore, event: AnyEvent) {
  const r = await jobs.apply(event);
  if (r.outcome === 'unknown-job') throw new StemflowError('UNKNOWN_JOB', `no job ${event.jobId} (yet)`, { retryable: true });
  if (r.outcome === 'applied' && r.job && isFinished(r.job)) {
    // Upload accepted → job ended, as the read model saw it (event times, not processing times).
    const sec = (Date.parse(event.occurredAt) - Date.parse(r.job.created_at)) / 1000;
    if (sec >= 0) stageDuration.observe({ stage: 'total', outcome: r.job.status }, sec);
  }
  return r;
}
