/**
 * Limits per API key, shared by every gateway through the ledger (never one process's memory):
 * - concurrent jobs: `max_concurrent_jobs` slots per key, each a lease held by one job; a slot
 *   whose job ended (or was never created) is taken over by compare-and-set;
 * - audio minutes per UTC day: what the key's jobs of the day were charged (decoded durations);
 *   a new job may use at most what is left, which the decoder enforces while it reads;
 * - requests per second: one counter per key and second, incremented atomically.
 */
import { isFinished, type Job } from '@stemflow/contracts';
import type { KeySettings } from '@stemflow/config';
import type { JobStore, Ledger } from '@stemflow/jobs';
import { acquire, release } from '@stemflow/jobs';

type Deps = { ledger: Ledger; jobs: Pick<JobStore, 'usage'> & { get: (id: string) => Promise<Job | undefined> } };

/** A slot whose job does not exist after this long is free (a creation that failed or crashed). */
const ORPHAN_SLOT_MS = 60_000;
const SLOT_LEASE_MS = 30 * 24 * 3600_000;

export const ownerLabel = (owner: string | null | undefined) => owner ?? 'anonymous';
const slotKey = (owner: string | null | undefined, i: number) => `slot:${ownerLabel(owner)}:${i}`;

export const startOfUtcDay = (now = new Date()) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
export const secondsToUtcMidnight = (now = new Date()) => Math.max(1, Math.ceil((startOfUtcDay(now).getTime() + 86_400_000 - now.getTime()) / 1000));

export class Limits {
  constructor(private readonly d: Deps) {}

  private async slotDone(jobId: unknown, at: unknown, now: number): Promise<boolean> {
    const job = typeof jobId === 'string' ? await this.d.jobs.get(jobId).catch(() => undefined) : undefined;
    if (job) return isFinished(job);
    return now - Number(at ?? 0) > ORPHAN_SLOT_MS;
  }

  /** Jobs of the key pending or processing (slots held by live jobs). */
  async activeJobs(owner: string | null | undefined, limit: number): Promise<number> {
    let n = 0;
    const now = Date.now();
    for (let i = 0; i < limit; i++) {
      const l = await this.d.ledger.current(slotKey(owner, i));
      if (l && !l.value.released && l.expiresAt.getTime() > now && !(await this.slotDone(l.value.jobId, l.value.at, now))) n++;
    }
    return n;
  }

  /** Takes a slot for the job, or says none is free (then the caller answers 429). */
  async claimSlot(owner: string | null | undefined, limit: number, jobId: string): Promise<{ release: () => Promise<void> } | undefined> {
    const now = Date.now();
    for (let i = 0; i < limit; i++) {
      const key = slotKey(owner, i);
      const r = await acquire(this.d.ledger, { key, token: jobId, value: { jobId, at: now }, expiresAt: new Date(now + SLOT_LEASE_MS) }, (h) => this.slotDone(h.value.jobId, h.value.at, now));
      if (r.acquired) return { release: () => release(this.d.ledger, key, jobId) };
    }
    return undefined;
  }

  /** Audio charged today and what is left of the day's minutes. */
  async minutes(owner: string | null | undefined, perDay: number, now = new Date()): Promise<{ usedSec: number; leftSec: number; jobs: number }> {
    const u = await this.d.jobs.usage(owner ?? null, startOfUtcDay(now));
    return { usedSec: u.audioSec, leftSec: Math.max(0, perDay * 60 - u.audioSec), jobs: u.jobs };
  }

  /** Counts one request in the key's current second: its number, or limit + 1 when over. */
  async hit(owner: string | null | undefined, limit: number, now = Date.now()): Promise<{ count: number }> {
    const second = Math.floor(now / 1000);
    const n = await this.d.ledger.ticket(`rate:${ownerLabel(owner)}:${second}`, limit, new Date((second + 5) * 1000));
    return { count: n ?? limit + 1 };
  }
}

/** RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers) entries for a key's limits. */
export function rateLimitFields(s: KeySettings, now: { requests?: number; activeJobs?: number; leftSec?: number }): { policy: string[]; state: string[] } {
  const policy: string[] = [];
  const state: string[] = [];
  if (s.requests_per_sec && now.requests !== undefined) {
    policy.push(`"requests";q=${s.requests_per_sec};w=1`);
    state.push(`"requests";r=${Math.max(0, s.requests_per_sec - now.requests)};t=1`);
  }
  if (s.max_concurrent_jobs && now.activeJobs !== undefined) {
    policy.push(`"concurrent-jobs";q=${s.max_concurrent_jobs};qu="concurrent-requests"`);
    state.push(`"concurrent-jobs";r=${Math.max(0, s.max_concurrent_jobs - now.activeJobs)}`);
  }
  if (s.audio_minutes_per_day && now.leftSec !== undefined) {
    policy.push(`"audio-minutes";q=${s.audio_minutes_per_day};w=86400`);
    state.push(`"audio-minutes";r=${Math.floor(now.leftSec / 60)};t=${secondsToUtcMidnight()}`);
  }
  return { policy, state };
}
