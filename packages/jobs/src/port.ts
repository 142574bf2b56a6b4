import type { AnyEvent, Job, JobOptions, JobStatus } from '@stemflow/contracts';
import type { Outcome } from './projection.js';

export type ListQuery = { owner?: string | null; status?: JobStatus; limit: number; cursor?: string };
export type ListResult = { items: Job[]; nextCursor: string | null };

/** The job read model. Only the status service applies events; the gateway creates and reads. */
export interface JobStore {
  /** Inserts a pending job unless one with its id exists (then returns that one). */
  create(job: Job): Promise<Job>;
  /** Applies one event by the projection rules, as one atomic conditional write. */
  apply(event: AnyEvent): Promise<{ outcome: Outcome; job?: Job }>;
  get(id: string): Promise<Job | undefined>;
  /** Newest first; cursor paging. */
  list(q: ListQuery): Promise<ListResult>;
  /** Removes the job for good; events that arrive later for it are ignored. */
  delete(id: string): Promise<boolean>;
  /** A completed job with the same input bytes and options (upload deduplication). */
  findReusable(sha256: string, options: JobOptions, owner: string | null): Promise<Job | undefined>;
  /** Ids of jobs created before the date (TTL cleanup). */
  createdBefore(date: Date, limit: number): Promise<string[]>;
  /**
   * One owner's jobs created since a time: how many, how many still run, and the audio seconds
   * charged (decoded durations of every job but failed ones).
   */
  usage(owner: string | null, since: Date): Promise<Usage>;
  /** How many jobs are in each status (metrics). */
  countByStatus(): Promise<Record<JobStatus, number>>;
  health(): Promise<{ ok: boolean; detail?: string }>;
  close(): Promise<void>;
}

export type Usage = { jobs: number; active: number; audioSec: number };
/** What a job counts for in an owner's usage (one rule for both stores). */
export function addUsage(u: Usage, j: Pick<Job, 'status' | 'input'>): Usage {
  const active = j.status === 'pending' || j.status === 'processing';
  return { jobs: u.jobs + 1, active: u.active + (active ? 1 : 0), audioSec: u.audioSec + (j.status === 'failed' ? 0 : (j.input.duration_sec ?? 0)) };
}

export const zeroCounts = (): Record<JobStatus, number> => ({ pending: 0, processing: 0, completed: 0, failed: 0, canceled: 0 });

export const encodeCursor = (job: Pick<Job, 'created_at' | 'id'>) => Buffer.from(`${job.created_at}|${job.id}`).toString('base64url');
export function decodeCursor(cursor: string): { created_at: string; id: string } | undefined {
  const [created_at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  return created_at && id && !Number.isNaN(Date.parse(created_at)) ? { created_at, id } : undefined;
}

/** Options compared for deduplication: the same request, whatever the key order. */
export const optionsKey = (o: JobOptions) => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))));
