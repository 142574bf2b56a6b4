import { z } from 'zod';

/** Stems in the order htdemucs produces them. */
export const STEM_NAMES = ['drums', 'bass', 'other', 'vocals'] as const;
export const StemName = z.enum(STEM_NAMES);
export type StemName = z.infer<typeof StemName>;
/** Two-stem mode adds `accompaniment` (the sum of every stem but vocals). */
export const OutputStemName = z.enum([...STEM_NAMES, 'accompaniment']);
export type OutputStemName = z.infer<typeof OutputStemName>;

export const AUDIO_FORMATS = ['wav16', 'wav24', 'f32', 'flac', 'mp3'] as const;
/** A stem file's encoding. */
export const AudioFormat = z.enum(AUDIO_FORMATS);
/** File extension of each output format. */
export const FORMAT_EXT = { wav16: 'wav', wav24: 'wav', f32: 'wav', flac: 'flac', mp3: 'mp3' } as const satisfies Record<AudioFormat, string>;
export type AudioFormat = z.infer<typeof AudioFormat>;
/** What a client may ask for: a format, or `wav` (WAV at the input's own bit depth, resolved when the input is decoded). */
export const RequestedFormat = z.enum([...AUDIO_FORMATS, 'wav']);
export type RequestedFormat = z.infer<typeof RequestedFormat>;
/** The sample rates a client may ask for: the input's own (default), or the model's. */
export const SAMPLE_RATES = ['input', '44100'] as const;

export const JOB_STATUSES = ['pending', 'processing', 'completed', 'failed', 'canceled'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'canceled'];
/** Whether a job has ended (completed, failed or canceled): nothing about it changes any more. */
export const isFinished = (job: { status: JobStatus }) => TERMINAL_STATUSES.includes(job.status);

/** `importing`: an input given by URL is being fetched into the store (bytes, not progress, move). */
export const STAGES = ['importing', 'decoding', 'separating', 'encoding'] as const;
/** Share of the whole job's progress at the end of decoding (the rest is separation and encoding). */
export const DECODE_SHARE = 0.05;
/** Share of the whole job's progress that separation covers, after decoding (encoding is the rest). */
export const SEPARATE_SHARE = 0.85;
export const JobStage = z.enum(STAGES);
export type JobStage = z.infer<typeof JobStage>;

/** Which graph separates: the published fp32 weights, or the same network with its MatMul weights in int8. */
export const QUALITIES = ['full', 'fast'] as const;
export type Quality = (typeof QUALITIES)[number];

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
    format: RequestedFormat.default('wav16').describe('Output encoding of each stem; "wav" follows the input (24-bit for a 24-bit or 32-bit input, 32-bit float for a float one, else 16-bit).'),
    shifts: z.int().min(1).max(10).default(1).describe('Random time shifts averaged (1 = none).'),
    overlap: z.number().min(0).max(0.9).default(0.25).describe('Overlap between model segments.'),
    clip: z
      .enum(['rescale', 'clamp'])
      .default('rescale')
      .describe('How peaks over full scale are handled: rescale (each stem scaled by its own peak, known when the whole stem is made) or clamp (samples limited to ±0.99; the stems can be heard while the job runs).'),
    sample_rate: z.enum(SAMPLE_RATES).default('input').describe("Sample rate of the stems: the input's own (the model runs at 44100 Hz either way), or 44100."),
    residual: z
      .boolean()
      .default(false)
      .describe('Put what the model left out (the mix minus the other stems) into other, or into accompaniment with two_stems, so the stems add up to the mix.'),
    start: z.number().min(0).max(86_400).default(0).describe('Separate only from this second of the input (a preview window).'),
    duration: z.number().min(1).max(86_400).optional().describe('Separate only this many seconds, from start (default: to the end).'),
    quality: z
      .enum(QUALITIES)
      .optional()
      .describe("Which graph separates: full (the published fp32 weights) or fast (its MatMul weights in int8: about 1.3× faster, every stem within 0.1 dB of full's SDR on the fidelity material). Unset: the server's DEFAULT_QUALITY."),
  })
  .strict()
  .refine((o) => !o.residual || o.two_stems || o.stems.includes('other'), { message: 'residual goes into other (or accompaniment with two_stems): include other in stems', path: ['residual'] });
export type JobOptions = z.infer<typeof JobOptions>;

/**
 * How each option travels as text (a multipart form field, a command-line flag): the one table
 * the form schema, its parsing, its writing and the CLI's flags are made from.
 */
export const OPTION_TEXT = {
  stems: 'list',
  two_stems: 'text',
  format: 'text',
  shifts: 'int',
  overlap: 'number',
  clip: 'text',
  sample_rate: 'text',
  residual: 'bool',
  start: 'number',
  duration: 'number',
  quality: 'text',
} as const satisfies Record<keyof z.infer<typeof JobOptions>, 'list' | 'text' | 'int' | 'number' | 'bool'>;
export type OptionName = keyof typeof OPTION_TEXT;
export const OPTION_NAMES = Object.keys(OPTION_TEXT) as OptionName[];

/** Job options as text fields (a multipart form, command-line flags): each set one converted, unchecked. */
export type OptionFields = { [K in OptionName]?: string | string[] };
export function optionsFromFields(f: OptionFields): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const k of OPTION_NAMES) {
    const v = f[k];
    if (v === undefined) continue;
    const one = Array.isArray(v) ? v[v.length - 1]! : v;
    switch (OPTION_TEXT[k]) {
      case 'list':
        raw[k] = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
        break;
      case 'int':
      case 'number':
        raw[k] = one.trim() === '' ? Number.NaN : Number(one);
        break;
      case 'bool':
        raw[k] = /^(true|1|yes|on)$/i.test(one) ? true : /^(false|0|no|off)$/i.test(one) ? false : one;
        break;
      default:
        raw[k] = one;
    }
  }
  return raw;
}

/** The inverse: job options as the text fields a form sends (every field, defaults included). */
export function fieldsFromOptions(o: JobOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of OPTION_NAMES) {
    const v = o[k];
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(',') : String(v);
  }
  return out;
}

/** The stems a job writes, in order. */
export const outputStemNames = (o: Pick<JobOptions, 'stems' | 'two_stems'>): OutputStemName[] => (o.two_stems ? ['vocals', 'accompaniment'] : [...o.stems]);

/** Whether a job's stems can be heard while it runs: their samples are final as they are made. */
export const streamsWhileRunning = (o: Pick<JobOptions, 'clip'>) => o.clip === 'clamp';

export const JobId = z.uuid().describe('Job id (UUID v7).');

/** The stored input: what was uploaded, or what an import fetched. */
export const InputInfo = z.object({
  key: z.string().min(1),
  filename: z.string(),
  size: z.int().nonnegative(),
  content_type: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  duration_sec: z.number().nonnegative().optional(),
  url: z.string().optional().describe('Imported from this URL (credentials and query redacted); since 2026-12.'),
});
export type InputInfo = z.infer<typeof InputInfo>;

/**
 * An input given by URL, before it is fetched (job.created of an import, since 2026-12): where it
 * will be stored and what it is called. The URL itself, credentials and query included, is kept in
 * the store beside the job (the importer reads it there); events carry it redacted.
 */
export const ImportSource = z.object({
  key: z.string().min(1).describe('Where the fetched file is stored.'),
  filename: z.string().describe("The file's name, from the URL's path (the response's Content-Disposition may name it better)."),
  url: z.string().describe('The URL, credentials and query redacted.'),
});
export type ImportSource = z.infer<typeof ImportSource>;

/** The read model's input: an import's size, type and hash are known once it is fetched. */
export const JobInput = InputInfo.partial({ size: true, content_type: true, sha256: true });
export type JobInput = z.infer<typeof JobInput>;

/** An import's transfer, as the importer reports it. */
export const ImportState = z.object({
  url: z.string().describe('The URL, credentials and query redacted.'),
  received_bytes: z.int().nonnegative().describe('Bytes fetched so far.'),
  total_bytes: z.int().nonnegative().nullable().describe('What the source announced (Content-Length), if it did.'),
  done: z.boolean().describe('The file is stored whole.'),
});
export type ImportState = z.infer<typeof ImportState>;

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
  attempts: z.int().nonnegative().describe('Attempts made so far.'),
  last_status: z.int().nullable().default(null).describe("The receiver's HTTP status on the last attempt (null: it did not answer)."),
  last_error: z.string().nullable().describe('Why the last attempt failed (null once delivered).'),
  next_attempt_at: z.iso.datetime().nullable().default(null).describe('While pending after a failed attempt: the latest time the next one is made.'),
});
export type WebhookState = z.infer<typeof WebhookState>;

export const StemReport = z.object({
  name: OutputStemName,
  peak: z.number().nonnegative().describe('Largest absolute sample before clipping was handled (1 = full scale).'),
  peak_db: z.number().describe('peak in dBFS (−300 for silence).'),
  gain: z.number().positive().max(1).describe('The gain clip=rescale applied to this stem (1: none).'),
});
/** What the stems are, measured as they were written. */
export const QualityReport = z.object({
  sample_rate: z.int().positive().describe('Sample rate of every stem (Hz).'),
  frames: z.int().nonnegative().describe('Length of every stem, in samples per channel.'),
  residual_db: z.number().describe('Energy of (mix − Σ stems) relative to the mix, in dB (−300: they add up exactly). Without the residual option this is what the model left out.'),
  stems: z.array(StemReport),
});
export type QualityReport = z.infer<typeof QualityReport>;

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
  input: JobInput,
  options: JobOptions,
  /** An input given by URL: its transfer (null for uploads). */
  import: ImportState.nullable().default(null),
  stems: z.array(StemObject).default([]),
  output: z
    .object({ sample_rate: z.int().positive(), frames: z.int().positive(), format: AudioFormat })
    .nullable()
    .default(null)
    .describe('What the stems will be, once the input is decoded.'),
  ready_sec: z.number().nonnegative().default(0).describe('Seconds of every stem already final while the job runs (stems streamed while separating: clip=clamp).'),
  report: QualityReport.nullable().default(null).describe('Set when the job completes.'),
  webhook: WebhookState.nullable().default(null),
  /** Ids of the events already applied (idempotency). */
  applied_events: z.array(z.string()).default([]),
});
export type Job = z.infer<typeof Job>;
