import { objectKeys } from '@stemflow/contracts';
import type { JobStore } from '@stemflow/jobs';
import { type BlobStore } from '@stemflow/storage';

/** Deletes jobs created more than ttlHours ago, objects first (a crash between leaves no orphan). */
export async function expireJobs(deps: { jobs: JobStore; blobs: BlobStore }, ttlHours: number, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - ttlHours * 3600_000);
  let removed = 0;
  for (;;) {
    const ids = await deps.jobs.createdBefore(cutoff, 100);
    if (ids.length === 0) return removed;
    for (const id of ids) {
      await deps.blobs.deletePrefix(objectKeys.job(id));
      await deps.jobs.delete(id);
      removed++;
    }
  }
}
