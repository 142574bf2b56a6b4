/**
 * POST /api/jobs beyond the upload itself: where the input comes from (the file, or a URL the
 * server fetches), where the job's end is reported (a webhook), whether the request repeats an
 * earlier one (Idempotency-Key), and whether the key may start another job (limits). Every step
 * that takes something (an input object, an idempotency lease, a concurrency slot) gives it back
 * when a later step refuses.
 */
import { createHash } from 'node:crypto';
import { StemflowError, invalid, type CreateJobResponse, type Job, type JobOptions, type Quality, type WebhookTarget } from '@stemflow/contracts';
import type { KeySettings } from '@stemflow/config';
import { acquire, optionsKey, release, type Ledger } from '@stemflow/jobs';
import { checkTarget, type AddressPolicy } from '@stemflow/net';
import { modelRuns } from '@stemflow/models/shape';
import { limitRefusals } from '@stemflow/telemetry';
import { Limits, rateLimitFields, secondsToUtcMidnight } from './limits.js';
import { createJob, type Deps, type JobSource } from './jobs.js';
import { storeInput, type StoredUpload } from './store-input.js';

/** How long an Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
/** A lease whose job does not exist after this long was left by a request that died: taken over. */
const ORPHAN_LEASE_MS = 60_000;

export type SubmitOptions = {
  maxUploadBytes: number;
  maxModelRuns?: number | undefined;
  ledger?: Ledger | undefined;
  policy: AddressPolicy;
  /** Without it, webhooks are off: a callback_url is refused. */
  webhookSecret?: string | undefined;
  /** The graph a job separates with when it does not say. */
  defaultQuality: Quality;
};

export type Submission = { options: JobOptions; callbackUrl?: string | undefined; inputUrl?: string | undefined };
export type Caller = { owner: string | null; settings: KeySettings };
/** One submit: who, what, and the request's Idempotency-Key. */
export type SubmitRequest = { jobId: string; caller: Caller; idempotencyKey: string | undefined };
/** The answer: the job (new, or the first one of a replayed Idempotency-Key). */
export type SubmitOutcome = { job: CreateJobResponse; replayed: boolean };

/** The Idempotency-Key header's value: 1-255 visible ASCII characters, or absent. */
export function idempotencyKey(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const k = v.trim().replace(/^"(.*)"$/, '$1');
  if (!/^[\x21-\x7e]{1,255}$/.test(k)) throw invalid('INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)');
  return k;
}

/** Marks a deleted job in the ledger for as long as an Idempotency-Key that made it is remembered. */
const deletedKey = (jobId: string) => `deleted:${jobId}`;

const leaseKey = (owner: string | null, key: string) => `idem:${owner ?? 'anonymous'}:${createHash('sha256').update(key).digest('hex')}`;

/** What makes two submits the same: the input (its bytes, or its URL), its name, options and callback. */
export function fingerprint(s: Submission, upload?: Pick<StoredUpload, 'sha256' | 'filename'>): string {
  const what = { input: upload ? { sha256: upload.sha256, filename: upload.filename } : { url: s.inputUrl }, options: optionsKey(s.options), callback: s.callbackUrl ?? null };
  return createHash('sha256').update(JSON.stringify(what)).digest('hex');
}

const tooMany = (code: 'QUOTA_EXCEEDED' | 'CONCURRENCY_LIMIT', message: string, retryAfterSec: number, limits?: { policy: string[]; state: string[] }) => {
  limitRefusals.inc({ limit: code === 'QUOTA_EXCEEDED' ? 'quota' : 'concurrency' });
  return new StemflowError(code, message, { status: 429, retryAfterSec, ...(limits ? { limits } : {}) });
};

export class Submitter {
  readonly limits: Limits | undefined;

  constructor(
    private readonly d: Deps & { jobs: Deps['jobs'] },
    private readonly o: SubmitOptions,
    private readonly jobsView: { get: (id: string) => Promise<Job | undefined> },
  ) {
    this.limits = o.ledger ? new Limits({ ledger: o.ledger, jobs: { usage: (w, s) => d.jobs.usage(w, s), get: (id) => jobsView.get(id) } }) : undefined;
  }

  /**
   * Before the body is read: a replayed Idempotency-Key skips the limits (it creates nothing);
   * otherwise a key over its day's minutes or with every job slot busy is refused at once.
   */
  async precheck(c: Caller, key: string | undefined): Promise<void> {
    const held = key && this.o.ledger ? await this.o.ledger.current(leaseKey(c.owner, key)) : undefined;
    if (held && !held.value.released && held.expiresAt > new Date()) return;
    await this.checkMinutes(c);
    const max = c.settings.max_concurrent_jobs;
    if (max && this.limits) {
      const active = await this.limits.activeJobs(c.owner, max);
      if (active >= max) throw tooMany('CONCURRENCY_LIMIT', `this API key has ${active} jobs pending or processing, the most it may run at once (${max}); submit again when one ends`, 5);
    }
  }

  private async checkMinutes(c: Caller): Promise<{ audioSecLeft: number; minutesPerDay: number } | undefined> {
    const perDay = c.settings.audio_minutes_per_day;
    if (!perDay || !this.limits) return undefined;
    const m = await this.limits.minutes(c.owner, perDay);
    if (m.leftSec <= 0) {
      const wait = secondsToUtcMidnight();
      throw tooMany('QUOTA_EXCEEDED', `this API key has used its ${perDay} audio minutes for today (UTC); the quota starts again in ${Math.ceil(wait / 60)} min`, wait, rateLimitFields(c.settings, { leftSec: 0 }));
    }
    return { audioSecLeft: m.leftSec, minutesPerDay: perDay };
  }

  /** Where the job's end goes: the job's callback_url (checked now), else the key's webhook. */
  private async webhookFor(s: Submission, c: Caller): Promise<WebhookTarget | undefined> {
    const url = s.callbackUrl ?? c.settings.webhook_url;
    if (!url) return undefined;
    if (!this.o.webhookSecret) throw invalid('CALLBACK_UNSUPPORTED', 'this server sends no webhooks (it has no WEBHOOK_SECRET); leave callback_url out and follow the job with GET /api/jobs/{id}/events');
    if (s.callbackUrl) await checkTarget(s.callbackUrl, this.o.policy);
    return { url, owner: c.owner };
  }

  /**
   * The rest of a submit once its fields (and the upload, if any) are in. `upload` is deleted on
   * every refusal. An input given by URL is not fetched here: its address is checked (a refused
   * one is a 400 now), and the job's first stage, in the decoder, fetches it.
   */
  async accept(r: SubmitRequest, submitted: Submission, upload: StoredUpload | undefined): Promise<SubmitOutcome> {
    const { jobId, caller: c, idempotencyKey: key } = r;
    // The job records the graph it runs, chosen now: a later change of the default does not change it.
    const s: Submission = { ...submitted, options: { ...submitted.options, quality: submitted.options.quality ?? this.o.defaultQuality } };
    const undo: (() => Promise<unknown>)[] = [];
    if (upload) undo.push(() => this.d.blobs.delete(upload.key));
    try {
      if (upload && s.inputUrl) throw invalid('INPUT_TWICE', 'send either a file or input_url, not both');
      if (!upload && !s.inputUrl) throw invalid('MISSING_FILE', 'no file: send the audio in the multipart field "file", or its URL in "input_url"');
      const minimal = modelRuns(1, s.options);
      if (this.o.maxModelRuns !== undefined && minimal > this.o.maxModelRuns) {
        throw invalid('COST_LIMIT', `shifts ${s.options.shifts} with overlap ${s.options.overlap} takes at least ${minimal} model runs even for the shortest file; this server allows at most ${this.o.maxModelRuns} per job`);
      }
      if (s.inputUrl) await checkTarget(s.inputUrl, this.o.policy);
      const webhook = await this.webhookFor(s, c);

      if (key) {
        if (!this.o.ledger) throw invalid('IDEMPOTENCY_UNSUPPORTED', 'this server keeps no idempotency keys');
        const replay = await this.claimKey(c.owner, key, fingerprint(s, upload), jobId);
        if (replay) {
          await Promise.all(undo.map((u) => u().catch(() => {})));
          return { job: replay, replayed: true };
        }
        undo.push(() => release(this.o.ledger!, leaseKey(c.owner, key), jobId));
      }

      const source: JobSource = upload ? { upload } : { url: s.inputUrl! };
      const quota = await this.checkMinutes(c);
      const max = c.settings.max_concurrent_jobs;
      if (max && this.limits) {
        const slot = await this.limits.claimSlot(c.owner, max, jobId);
        if (!slot) throw tooMany('CONCURRENCY_LIMIT', `this API key has ${max} jobs pending or processing, the most it may run at once; submit again when one ends`, 5);
        undo.push(slot.release);
      }
      const job = await createJob(this.d, jobId, source, s.options, c.owner, { webhook, quota });
      this.d.log.info({ jobId: job.id, ...(upload ? { bytes: upload.size, type: upload.contentType } : { importing: true }) }, 'job accepted');
      return { job: { id: job.id, status: 'pending', created_at: job.created_at }, replayed: false };
    } catch (err) {
      for (const u of undo.reverse()) await u().catch(() => {});
      throw err;
    }
  }

  /** A job was deleted: an Idempotency-Key that made it makes a new job when it is used again. */
  async jobDeleted(jobId: string): Promise<void> {
    if (!this.o.ledger) return;
    const now = new Date();
    await acquire(this.o.ledger, { key: deletedKey(jobId), token: jobId, value: { at: now.toISOString() }, expiresAt: new Date(now.getTime() + IDEMPOTENCY_TTL_MS) });
  }

  /**
   * Takes the key for this submit, or answers what the first one got: the same request → its
   * job (the caller replays the answer); another request under the same key → 422. Twenty
   * concurrent requests with one key: one insert wins, the rest see its lease.
   */
  private async claimKey(owner: string | null, key: string, print: string, jobId: string): Promise<{ id: string; status: 'pending'; created_at: string } | undefined> {
    const now = new Date();
    type Held = { fingerprint: string; jobId: string; created_at: string };
    // A lease whose job never came to exist (its request died before creating it), or whose job
    // was deleted, is free again: the same request makes a new job rather than answer a gone one.
    const orphan = async (h: { value: Record<string, unknown> }) => {
      const v = h.value as Held;
      if (await this.jobsView.get(v.jobId).catch(() => undefined)) return false;
      return now.getTime() - Date.parse(v.created_at) > ORPHAN_LEASE_MS || (await this.o.ledger!.current(deletedKey(v.jobId))) !== undefined;
    };
    const r = await acquire(this.o.ledger!, { key: leaseKey(owner, key), token: jobId, value: { fingerprint: print, jobId, created_at: now.toISOString() }, expiresAt: new Date(now.getTime() + IDEMPOTENCY_TTL_MS) }, orphan, now);
    if (r.acquired) return undefined;
    const held = r.holder.value as Held;
    if (held.fingerprint !== print) throw invalid('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request (another file, URL or options) in the last 24 h; use a new key for a new job', 422);
    // The first request's answer (it may still be creating its job: the id is already its own).
    const first = await this.jobsView.get(held.jobId).catch(() => undefined);
    return { id: held.jobId, status: 'pending', created_at: first?.created_at ?? held.created_at };
  }
}
