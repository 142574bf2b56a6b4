import { z } from 'zod';
import { JobId, JobOptions, JobStage, JobStatus, OutputStemName, AudioFormat, WebhookState, ImportState, STEM_NAMES, OPTION_NAMES, OPTION_TEXT, QualityReport, JOB_STATUSES, type OptionName } from './job.js';

const urlField = (what: string) => z.string().min(1).max(2048).describe(what);
const CALLBACK = 'Where the job\'s end (job.completed, job.failed or job.canceled) is POSTed, signed as Standard Webhooks says; overrides the API key\'s webhook. Public http(s) addresses only.';
const INPUT_URL = 'Instead of a file: an http(s) URL the server fetches (the same size and type checks as an upload; redirects followed and checked; public addresses only).';

/**
 * The multipart form of POST /api/jobs: the job options as text (each converted and checked by
 * the JobOptions schema), plus where the input comes from and where its end is reported.
 */
const textField = (k: OptionName) => {
  const what = JobOptions.shape[k].description ?? '';
  switch (OPTION_TEXT[k]) {
    case 'list':
      return z.union([z.string(), z.array(z.string())]).optional().describe(`Comma-separated subset of ${STEM_NAMES.join(', ')} (default: all).`);
    case 'int':
      return z.string().regex(/^-?\d+$/, 'must be a whole number').optional().describe(what);
    case 'number':
      return z.string().regex(/^-?\d*\.?\d+$/, 'must be a number').optional().describe(what);
    case 'bool':
      return z.enum(['true', 'false']).optional().describe(what);
    default:
      return z.string().optional().describe(what);
  }
};
export const SubmitForm = z
  .object({
    ...(Object.fromEntries(OPTION_NAMES.map((k) => [k, textField(k)])) as { [K in OptionName]: ReturnType<typeof textField> }),
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
  options: JobOptions.describe('The options the job runs with, defaults and the server\'s choices (quality) filled in.'),
  import: ImportState.nullable().describe('An input given by URL: its transfer, fetched as the job\'s first stage (`importing`); null for uploads.'),
  stems: z.array(StemView),
  ready_sec: z.number().nonnegative().describe('Seconds of every stem already final while the job runs.'),
  live_stems: z
    .array(StemView.omit({ bytes: true }))
    .describe('While a job whose stems stream (clip=clamp) runs: each stem\'s URL, which plays what is ready and grows until the stem is complete.'),
  report: QualityReport.nullable().describe('Once completed: sample rate, length, residual (mix − Σ stems) in dB, each stem\'s peak and rescale gain.'),
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

/** GET /api/jobs's query. */
export const ListJobsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20).describe('Jobs per page.'),
    cursor: z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+$/, 'is not a cursor this server gave out').optional().describe('next_cursor of the previous page.'),
    status: z.enum(JOB_STATUSES).optional().describe('Only jobs in this state.'),
  })
  .strict();

/** The waveform levels the server keeps (frames per block). */
export const PEAK_LEVELS = [256, 512, 1024, 2048, 4096, 8192, 16384] as const;
export type PeakLevel = (typeof PEAK_LEVELS)[number];
/** GET …/peaks's query. */
export const PeaksQuery = z
  .object({
    samples_per_pixel: z.coerce
      .number()
      .pipe(z.literal(PEAK_LEVELS))
      .default(1024)
      .describe('Frames per block: one of the levels the server keeps.'),
  })
  .strict();

const STEM_LIST = `(${OutputStemName.options.join('|')})`;
const GAIN = `${STEM_LIST}:(\\d+(\\.\\d+)?|\\.\\d+)`;
/** GET /api/jobs/{id}/mix's query. */
export const MixQuery = z
  .object({
    stems: z
      .string()
      .max(200)
      .regex(new RegExp(`^${STEM_LIST}(,${STEM_LIST})*$`), `must be stems of the job, comma-separated (${OutputStemName.options.join(', ')})`)
      .optional()
      .describe('Comma-separated stems of the job to mix (default: all).'),
    gains: z
      .string()
      .max(400)
      .regex(new RegExp(`^${GAIN}(,${GAIN})*$`), 'must be stem:value pairs, comma-separated (e.g. bass:0.5)')
      .optional()
      .describe('Linear gains, `stem:value` pairs from 0 to 4, comma-separated (default 1: as separated), e.g. `bass:0.5`.'),
    format: AudioFormat.optional().describe("The file's format (default: the job's)."),
    tempo: z.coerce.number().min(0.5).max(1.5).optional().describe('Play speed with the key kept, 0.5 to 1.5 (default 1), as the page\'s tempo control: time-stretched by Rubber Band.'),
    semitones: z.coerce.number().int().min(-12).max(12).optional().describe('Transposition in semitones, −12 to 12 (default 0), the tempo kept.'),
  })
  .strict();

/** An error while streaming a job's events that ended the stream (SSE `deleted`). */
export const DeletedEvent = z.object({ id: JobId });
