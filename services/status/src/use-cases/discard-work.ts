import { objectKeys } from '@stemflow/contracts';
import { type BlobStore } from '@stemflow/storage';

/**
 * A job that failed or was canceled is never separated again: what was made on the way to its
 * stems (the decoded PCM, the checkpoints, the pieces of stems streamed while it ran) goes now,
 * not at the job's expiry. Its input, its webhook target and its cancel marker stay.
 */
export async function discardWork(blobs: BlobStore, jobId: string): Promise<number> {
  let removed = 0;
  for (const prefix of objectKeys.intermediates(jobId)) removed += await blobs.deletePrefix(prefix);
  return removed;
}
