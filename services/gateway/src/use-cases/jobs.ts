/** The gateway's use cases: plain functions over the ports, no express in sight. */
import { newEvent, type EventBus } from '@stemflow/bus';
import { StemflowError, isFinished, outputStemNames, streamsWhileRunning, describeError, unavailable, type EventOf, type Job, type JobOptions, type JobView, objectKeys, type WebhookTarget } from '@stemflow/contracts';
import { jobFromCreated, type JobStore } from '@stemflow/jobs';
import { markCanceled, safeFileName, writeImportTarget, writeWebhookTarget, type BlobStore } from '@stemflow/storage';
import type { Logger } from '@stemflow/telemetry';
import type { StoredUpload } from './store-input.js';
import { pathName, redactUrl } from '@stemflow/net';

export type Deps = { bus: EventBus; blobs: BlobStore; jobs: JobStore; log: Logger };

/**
 * Records the job (insert-if-absent, so the client can read it at once) and publishes job.created.
 * Answers only after the broker confirmed; if anything fails, the job and its upload are removed.
 */
export type JobExtras = {
  /** Where the job's end is POSTed (the webhook service reads it from the store). */
  webhook?: WebhookTarget | undefined;
  /** The API key's audio seconds left today (the decoder refuses a longer file). */
  quota?: { audioSecLeft: number; minutesPerDay: number } | undefined;
};

/** Where a job's input comes from: an upload already stored, or a URL its first stage fetches. */
export type JobSource = { upload: StoredUpload } | { url: string };

/**
 * The one builder of a job's job.created event: its input, options and owner, the stems it may
 * reuse (the same bytes and options done before for this owner), its webhook, and the owner's
 * audio left today. Published once by the gateway and kept beside the job, it is what a resumed
 * job is announced with again.
 */
export async function jobCreatedEvent(jobs: Pick<JobStore, 'findReusable'>, jobId: string, source: JobSource, options: JobOptions, owner: string | null, extras: JobExtras = {}): Promise<EventOf<'job.created'>> {
  // The same bytes with the same options were separated before (for this owner): reuse the stems.
  // (An import's bytes are known only once fetched: it is always separated.)
  const reuse = 'upload' in source ? await jobs.findReusable(source.upload.sha256, options, owner).catch(() => undefined) : undefined;
  return newEvent('job.created', jobId, {
    ...('upload' in source
      ? { input: { key: source.upload.key, filename: source.upload.filename, size: source.upload.size, content_type: source.upload.contentType, sha256: source.upload.sha256 } }
      : { import: { key: objectKeys.input(jobId), filename: safeFileName(pathName(source.url)), url: redactUrl(source.url) } }),
    options,
    owner,
    // The stems to copy travel with the event: the decoder needs no database.
    ...(reuse ? { reuseOf: reuse.id, reuseStems: reuse.stems, ...(reuse.report ? { reuseReport: reuse.report } : {}) } : {}),
    ...(extras.webhook ? { webhook: { url: redactUrl(extras.webhook.url) } } : {}),
    ...(extras.quota ? { quota: extras.quota } : {}),
  });
}

export async function createJob(d: Deps, jobId: string, source: JobSource, options: JobOptions, owner: string | null, extras: JobExtras = {}): Promise<Job> {
  const event = await jobCreatedEvent(d.jobs, jobId, source, options, owner, extras);
  const job = jobFromCreated(event);
  try {
    if (extras.webhook) await writeWebhookTarget(d.blobs, jobId, extras.webhook);
    if ('url' in source) await writeImportTarget(d.blobs, jobId, { url: source.url });
    await d.blobs.put(objectKeys.created(jobId), Buffer.from(JSON.stringify(event)), { contentType: 'application/json' });
    await d.jobs.create(job);
    await d.bus.publish(event);
    return job;
  } catch (err) {
    d.log.warn({ jobId, err: describeError(err) }, 'could not accept the job, removing what was kept');
    await d.jobs.delete(jobId).catch(() => {});
    await d.blobs.deletePrefix(objectKeys.job(jobId)).catch(() => {});
    if (err instanceof StemflowError) throw err;
    throw unavailable('the job service', err);
  }
}

export async function getOwnedJob(d: { jobs: Pick<JobStore, 'get'> }, id: string, owner: string | null | undefined): Promise<Job> {
  const job = await d.jobs.get(id);
  // Another key's job is reported as missing: its existence is not theirs to know.
  if (!job || (owner !== undefined && job.owner !== owner)) throw new StemflowError('JOB_NOT_FOUND', `no job ${id}`, { status: 404 });
  return job;
}


/**
 * Every worker instance gets the event on its own queue (applied within a chunk); the marker left
 * in the store covers one that was down or starts later. No database on the way.
 */
export async function cancelJob(d: Deps, job: Job): Promise<void> {
  if (isFinished(job)) throw new StemflowError('JOB_FINISHED', `the job already ended (${job.status})`, { status: 409 });
  await markCanceled(d.blobs, job.id);
  await d.bus.publish(newEvent('job.canceled', job.id, {}));
}

/** Cancels a running job, then removes its objects and its record. */
export async function deleteJob(d: Deps, job: Job): Promise<void> {
  if (!isFinished(job)) await d.bus.publish(newEvent('job.canceled', job.id, {}));
  await d.blobs.deletePrefix(objectKeys.job(job.id));
  await d.jobs.delete(job.id);
}

export function toView(job: Job, base = '/api'): JobView {
  return {
    id: job.id,
    status: job.status,
    error_message: job.error_message,
    created_at: job.created_at,
    updated_at: job.updated_at,
    stage: job.stage,
    progress: job.progress,
    eta_sec: job.eta_sec,
    filename: job.input.filename,
    options: job.options,
    import: job.import ?? null,
    stems: job.stems.map((s) => ({ name: s.name, format: s.format, bytes: s.bytes, url: `${base}/jobs/${job.id}/stems/${s.name}` })),
    ready_sec: job.ready_sec ?? 0,
    live_stems:
      job.status === 'processing' && job.output && streamsWhileRunning(job.options)
        ? outputStemNames(job.options).map((name) => ({ name, format: job.output!.format, url: `${base}/jobs/${job.id}/stems/${name}` }))
        : [],
    report: job.report ?? null,
    webhook: job.webhook ?? null,
  };
}
