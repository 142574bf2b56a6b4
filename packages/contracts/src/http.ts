import { z } from 'zod';
import { JobId, JobStage, JobStatus, OutputStemName, AudioFormat } from './job.js';

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
