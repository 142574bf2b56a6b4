/**
 * The in-process bus keeps its messages in memory: a process killed mid-job loses the events that
 * were driving its jobs. At start, every job the embedded read model still shows as pending or
 * processing is announced again; the stages are idempotent and resume from what is stored (the
 * decoder from a complete PCM, the separator from its last checkpointed chunk), so each such job
 * completes instead of staying `processing` forever.
 */
import { newEvent, type EventBus } from '@stemflow/bus';
import type { JobStatus } from '@stemflow/contracts';
import type { JobStore } from '@stemflow/jobs';
import type { Logger } from '@stemflow/telemetry';

export async function resumeInFlight(d: { bus: EventBus; jobs: JobStore; log: Logger }): Promise<number> {
  let resumed = 0;
  for (const status of ['pending', 'processing'] as JobStatus[]) {
    let cursor: string | undefined;
    do {
      const page = await d.jobs.list({ status, limit: 100, ...(cursor ? { cursor } : {}) });
      for (const job of page.items) {
        await d.bus.publish(newEvent('job.created', job.id, { input: job.input, options: job.options, owner: job.owner }));
        resumed++;
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
  if (resumed) d.log.info({ jobs: resumed }, 'resuming jobs left in flight by the last run');
  return resumed;
}
