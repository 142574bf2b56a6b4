import { z } from 'zod';

/** Stems in the order htdemucs produces them. */
export const STEM_NAMES = ['drums', 'bass', 'other', 'vocals'] as const;
export const StemName = z.enum(STEM_NAMES);
export type StemName = z.infer<typeof StemName>;
/** Two-stem mode adds `accompaniment` (the sum of every stem but vocals). */
export const OutputStemName = z.enum([...STEM_NAMES, 'accompaniment']);
export type OutputStemName = z.infer<typeof OutputStemName>;

export const AUDIO_FORMATS = ['wav16', 'wav24', 'f32', 'flac', 'mp3'] as const;
export const AudioFormat = z.enum(AUDIO_FORMATS);
/** File extension of each output format. */
export const FORMAT_EXT = { wav16: 'wav', wav24: 'wav', f32: 'wav', flac: 'flac', mp3: 'mp3' } as const satisfies Record<AudioFormat, string>;
export type AudioFormat = z.infer<typeof AudioFormat>;

export const JOB_STATUSES = ['pending', 'processing', 'completed', 'failed', 'canceled'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'canceled'];

export const STAGES = ['decoding', 'separating', 'encoding'] as const;
/** Share of the whole job's progress at the end of decoding (the rest is separation and encoding). */
export const DECODE_SHARE = 0.05;
/** Share of the whole job's progress that separation covers, after decoding (encoding is the rest). */
export const SEPARATE_SHARE = 0.85;
export const JobStage = z.enum(STAGES);
export type JobStage = z.infer<typeof JobStage>;

/** What the client asked for. Every field has a default, so `{}` is a valid request. */
export const JobOptions = z
  .object({
    stems: z
      .array(StemName)
      .min(1)
      .refine((s) => new Set(s).size === s.length, 'stems must not repeat')
      .default([...STEM_NAMES])
      .describe('Which stems to write (a subset of drums, bass, other, vocals).'),
    two_stems: z
      .literal('vocals')
      .optional()
      .describe('Two-stem mode: "vocals" writes vocals and accompaniment (the sum of the rest).'),
    format: AudioFormat.default('wav16').describe('Output encoding of each stem.'),
    shifts: z.int().min(1).max(10).default(1).describe('Random time shifts averaged (1 = none).'),
    overlap: z.number().min(0).max(0.9).default(0.25).describe('Overlap between model segments.'),
    clip: z.enum(['rescale', 'clamp']).default('rescale').describe('How peaks over full scale are handled.'),
  })
  .strict();
export type JobOptions = z.infer<typeof JobOptions>;

/** Job options as text fields (a multipart form, command-line flags): each set one converted, unchecked. */
export type OptionFields = { stems?: string | string[]; two_stems?: string; format?: string; shifts?: string; overlap?: string; clip?: string };
export function optionsFromFields(f: OptionFields): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  if (f.stems !== undefined) raw.stems = (Array.isArray(f.stems) ? f.stems : [f.stems]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (f.two_stems !== undefined) raw.two_stems = f.two_stems;
  if (f.format !== undefined) raw.format = f.format;
  if (f.shifts !== undefined) raw.shifts = Number(f.shifts);
  if (f.overlap !== undefined) raw.overlap = Number(f.overlap);
  if (f.clip !== undefined) raw.clip = f.clip;
  return raw;
}

/** The inverse: job options as the text fields a form sends (every field, defaults included). */
export function fieldsFromOptions(o: JobOptions): Record<string, string> {
  return {
    stems: o.stems.join(','),
    ...(o.two_stems ? { two_stems: o.two_stems } : {}),
    format: o.format,
    shifts: String(o.shifts),
    overlap: String(o.overlap),
    clip: o.clip,
  };
}

export const JobId = z.uuid().describe('Job id (UUID v7).');

export const InputInfo = z.object({
  key: z.string().min(1),
  filename: z.string(),
  size: z.int().nonnegative(),
  content_type: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  duration_sec: z.number().nonnegative().optional(),
});
export type InputInfo = z.infer<typeof InputInfo>;

export const StemObject = z.object({
  name: OutputStemName,
  format: AudioFormat,
  key: z.string().min(1).describe('Object key in the store (bucket S3_BUCKET), e.g. jobs/{jobId}/stems/vocals.wav.'),
  bytes: z.int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional().describe('SHA-256 of the stored file, hex (set by producers since 2026-11).'),
});
export type StemObject = z.infer<typeof StemObject>;

export const WebhookState = z.object({
  url: z.string().describe('The receiver (credentials and query redacted).'),
  status: z.enum(['pending', 'delivered', 'failed']).describe('pending until the job ends and its event is delivered (2xx) or given up.'),
  attempts: z.int().nonnegative(),
  last_error: z.string().nullable(),
});
export type WebhookState = z.infer<typeof WebhookState>;

/** The read model: one document per job, written by the status service only. */
export const Job = z.object({
  id: JobId,
  owner: z.string().nullable().default(null),
  status: JobStatus,
  stage: JobStage.nullable().default(null),
  progress: z.number().min(0).max(1).default(0),
  eta_sec: z.number().nonnegative().nullable().default(null),
  error_message: z.string().nullable().default(null),
  error_code: z.string().nullable().default(null),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  input: InputInfo,
  options: JobOptions,
  stems: z.array(StemObject).default([]),
  webhook: WebhookState.nullable().default(null),
  /** Ids of the events already applied (idempotency). */
  applied_events: z.array(z.string()).default([]),
});
export type Job = z.infer<typeof Job>;
