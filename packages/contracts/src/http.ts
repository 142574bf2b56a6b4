import { z } from 'zod';
import { JobId, JobOptions, JobStage, JobStatus, OutputStemName, AudioFormat, WebhookState, STEM_NAMES } from './job.js';

const urlField = (what: string) => z.string().min(1).max(2048).describe(what);
const CALLBACK = 'Where the job\'s end (job.completed, job.failed or job.canceled) is POSTed, signed as Standard Webhooks says; overrides the API key\'s webhook. Public http(s) addresses only.';
const INPUT_URL = 'Instead of a file: an http(s) URL the server fetches (the same size and type checks as an upload; redirects followed and checked; public addresses only).';

/**
 * The multipart form of POST /api/jobs: the job options as text (each converted and checked by
 * the JobOptions schema), plus where the input comes from and where its end is reported.
 */
export const SubmitForm = z
  .object({
    stems: z.union([z.string(), z.array(z.string())]).optional().describe(`Comma-separated subset of ${STEM_NAMES.join(', ')} (default: all).`),
    two_stems: z.string().optional().describe(JobOptions.shape.two_stems.description ?? ''),
    format: z.string().optional().describe(JobOptions.shape.format.description ?? ''),
    shifts: z.string().regex(/^-?\d+$/, 'must be a whole number').optional().describe(JobOptions.shape.shifts.description ?? ''),
    overlap: z.string().regex(/^-?\d*\.?\d+$/, 'must be a number').optional().describe(JobOptions.shape.overlap.description ?? ''),
    clip: z.string().optional().describe(JobOptions.shape.clip.description ?? ''),
    callback_url: urlField(CALLBACK).optional(),
    input_url: urlField(INPUT_URL).optional(),
  })
  .strict();
export type SubmitForm = z.infer<typeof SubmitForm>;

/** The JSON form of POST /api/jobs (an import by URL): the options as JSON, typed. */
export const SubmitJson = z.object({ ...JobOptions.shape, input_url: urlField(INPUT_URL), callback_url: urlField(CALLBACK).optional() }).strict();

/** GET /api/usage: the calling key's limits and what it used. */
export const UsageView = z.object({
  day: z.string().describe('The UTC day the minutes count in (YYYY-MM-DD).'),
  limits: z.object({
    max_concurrent_jobs: z.int().nullable(),
    audio_minutes_per_day: z.number().nullable(),
    requests_per_sec: z.int().nullable(),
  }),
  usage: z.object({
    active_jobs: z.int().nullable().describe('Pending or processing now (null when the key has no concurrency limit).'),
    jobs_today: z.int(),
    audio_minutes_today: z.number().describe('Decoded minutes of today\'s jobs, failed ones not counted.'),
    audio_minutes_left: z.number().nullable(),
  }),
  resets_in_sec: z.int().describe('Until the day\'s minutes start again (UTC midnight).'),
});
export const WebhookSecretView = z.object({
  secret: z.string().describe('whsec_… : verify the webhook-signature header with it (any Standard Webhooks library).'),
  scheme: z.literal('standard-webhooks-v1'),
});

export const ErrorBody = z.object({
  error: z.object({
    code: z.string().describe('Stable machine-readable code, e.g. UPLOAD_TOO_LARGE.'),
    message: z.string().describe('What is wrong, for a person.'),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export const CreateJobResponse = z.object({
  id: JobId,
  status: z.literal('pending'),
  created_at: z.iso.datetime(),
});
export type CreateJobResponse = z.infer<typeof CreateJobResponse>;

export const StemView = z.object({
  name: OutputStemName,
  format: AudioFormat,
  bytes: z.int().nonnegative(),
  url: z.string().describe('Download link (relative to the API).'),
});

/** GET /api/jobs/{id}: the seed's fields plus progress and stems. */
export const JobView = z.object({
  id: JobId,
  status: JobStatus,
  error_message: z.string().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  stage: JobStage.nullable(),
  progress: z.number().min(0).max(1),
  eta_sec: z.number().nullable(),
  filename: z.string(),
  stems: z.array(StemView),
  webhook: WebhookState.nullable().describe("Where the job's end is reported, and how that went (null: no webhook)."),
});
export type JobView = z.infer<typeof JobView>;

export const JobList = z.object({
  items: z.array(JobView),
  next_cursor: z.string().nullable(),
});

export const DependencyHealth = z.object({
  name: z.string(),
  ok: z.boolean(),
  detail: z.string().optional(),
});
export const Health = z.object({
  status: z.enum(['ok', 'degraded']),
  dependencies: z.array(DependencyHealth),
});
export type Health = z.infer<typeof Health>;
