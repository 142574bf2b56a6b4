/**
 * A gateway that dies mid-upload leaves an unfinished multipart upload in the store, or, if it
 * died between the store's confirm and the job's insert, an input object no job owns. This sweep
 * removes both once they are older than a grace period (longer than any upload still in flight on
 * a live gateway): at start and periodically, on every gateway replica (it is idempotent).
 *
 * A worker's unfinished write (PCM, a stem) is a different matter: it lasts as long as the work
 * behind it, which no grace bounds (a long song, many shifts, a slow machine), so it is removed
 * only once nobody can be making it: its job is gone or has ended. One left by a worker that died
 * while its job runs stays until the job ends (the redelivered job writes its own).
 *
 * And the fence behind a delete: any prefix `jobs/{id}/` whose job is gone and whose objects are
 * all older than the grace is removed whole — whatever a late writer (a worker that had not yet
 * heard of the delete) put there. So nothing of a deleted job outlives the grace plus one sweep.
 */
import { JOBS_PREFIX, isFinished, objectKeys } from '@stemflow/contracts';
import type { Logger } from '@stemflow/telemetry';
import type { Deps } from './jobs.js';

export async function sweepOrphanUploads(d: Omit<Deps, 'bus'>, graceMs: number, now = Date.now()): Promise<{ aborted: number; removedJobs: number }> {
  const cutoff = new Date(now - graceMs);
  const ended = new Map<string, Promise<boolean>>(); // job id → nobody is writing for it any more
  const abandoned = (key: string): boolean | Promise<boolean> => {
    if (objectKeys.isInput(key)) return true;
    const id = objectKeys.jobOf(key);
    if (!id) return false;
    if (!ended.has(id)) ended.set(id, d.jobs.get(id).then((job) => !job || isFinished(job)));
    return ended.get(id)!;
  };
  const aborted = await d.blobs.abortStaleWrites(JOBS_PREFIX, cutoff, abandoned);
  const candidates = new Map<string, boolean>(); // job id → every object of its prefix older than the cutoff
  for (const b of await d.blobs.list(JOBS_PREFIX)) {
    const id = objectKeys.jobOf(b.key);
    if (!id) continue;
    const old = b.modified !== undefined && b.modified < cutoff;
    candidates.set(id, (candidates.get(id) ?? true) && old);
  }
  let removedJobs = 0;
  for (const [id, old] of candidates) {
    if (!old || (await d.jobs.get(id))) continue;
    await d.blobs.deletePrefix(objectKeys.job(id));
    removedJobs++;
  }
  return { aborted, removedJobs };
}

/** Runs the sweep now and then every `everyMs`; returns a stop function. */
export function startOrphanSweeper(d: Omit<Deps, 'bus'>, graceMs: number, log: Logger, everyMs = Math.min(15 * 60_000, Math.max(1000, graceMs / 2))): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const r = await sweepOrphanUploads(d, graceMs);
      if (r.aborted || r.removedJobs) log.info({ ...r, graceSec: graceMs / 1000 }, 'removed what interrupted uploads left behind');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'orphan upload sweep failed, will try again');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void run(), everyMs);
  timer.unref();
  void run();
  return () => clearInterval(timer);
}
