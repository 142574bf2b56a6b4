/**
 * The in-process bus keeps its messages in memory: a process killed mid-job loses the events that
 * were driving its jobs. At start, every job the embedded read model still shows as pending or
 * processing is announced again with the job.created the gateway published for it (kept beside
 * the job: its options, owner, the key's quota for the day, the stems it reuses, its webhook), so
 * a resumed job is the job that was accepted. The stages are idempotent and resume from what is
 * stored (the decoder from a complete PCM, the separator from its last checkpointed chunk).
 */
import { type EventBus } from '@stemflow/bus';
import { EVENTS, type Job, type JobStatus, objectKeys } from '@stemflow/contracts';
import { jobCreatedEvent, type JobSource } from '@stemflow/gateway';
import type { JobStore } from '@stemflow/jobs';
import { readObjectIfAny, type BlobStore } from '@stemflow/storage';
import type { Logger } from '@stemflow/telemetry';

/** A job's input as its record has it: the stored upload (or import), else the URL still to fetch. */
function sourceOf(job: Job): JobSource {
  const i = job.input;
  if (i.size !== undefined && i.sha256 !== undefined && i.content_type !== undefined) return { upload: { key: i.key, filename: i.filename, size: i.size, contentType: i.content_type, sha256: i.sha256 } };
  return { url: i.url ?? '' };
}

export async function resumeInFlight(d: { bus: EventBus; jobs: JobStore; blobs: BlobStore; log: Logger }): Promise<number> {
  let resumed = 0;
  for (const status of ['pending', 'processing'] as JobStatus[]) {
    let cursor: string | undefined;
    do {
      const page = await d.jobs.list({ status, limit: 100, ...(cursor ? { cursor } : {}) });
      for (const job of page.items) {
        const kept = await readObjectIfAny(d.blobs, objectKeys.created(job.id));
        const stored = kept ? EVENTS['job.created'].safeParse(JSON.parse(kept.toString('utf8'))) : undefined;
        // A job accepted before its announcement was kept: made again from its record (no quota, no reuse).
        const event = stored?.success
          ? stored.data
          : await jobCreatedEvent({ findReusable: async () => undefined }, job.id, sourceOf(job), job.options, job.owner);
        await d.bus.publish(event);
        resumed++;
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
  if (resumed) d.log.info({ jobs: resumed }, 'resuming jobs left in flight by the last run');
  return resumed;
}
