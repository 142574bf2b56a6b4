import { z } from 'zod';
import { AudioFormat, ImportSource, InputInfo, JobId, JobOptions, JobStage, QualityReport, StemObject } from './job.js';

/** Every event carries the job id and one payload, in one envelope shape. */
const envelope = <T extends string, V extends number, P extends z.ZodType>(type: T, version: V, payload: P) =>
  z.object({
    id: z.uuid().describe('Event id (UUID v7); the AMQP message_id.'),
    type: z.literal(type),
    version: z.literal(version),
    jobId: JobId,
    occurredAt: z.iso.datetime(),
    payload,
  });

export const JobCreatedPayload = z.object({
  /** The uploaded file, stored. Absent for an import (then `import` says what to fetch). */
  input: InputInfo.optional(),
  /** An input given by URL, fetched by the decoder as the job's first stage (since 2026-12). */
  import: ImportSource.optional(),
  options: JobOptions,
  owner: z.string().nullable().default(null),
  /** Set when the upload matched a completed job: its stems are reused, nothing is separated. */
  reuseOf: JobId.optional(),
  /** With reuseOf: the stems to copy, so the decoder needs no database (since 2026-11). */
  reuseStems: z.array(StemObject).min(1).optional(),
  /** With reuseOf: that job's quality report, which the copied stems share (since 2026-12). */
  reuseReport: QualityReport.optional(),
  /** Where the job's end is reported by webhook (the job's callback_url or its API key's), credentials and query redacted. */
  webhook: z.object({ url: z.string() }).optional().describe('Since 2026-11: the job has a webhook target (redacted URL).'),
  /** The API key's audio left today when the job was accepted: the decoder refuses more (since 2026-11). */
  quota: z.object({ audioSecLeft: z.number().nonnegative(), minutesPerDay: z.number().positive() }).optional(),
}).refine((p) => (p.input === undefined) !== (p.import === undefined), 'a job.created carries either input or import');
/** An input given by URL is stored whole: what it is (since 2026-12). The decoder goes on to decode it. */
export const JobImportedPayload = z.object({ input: InputInfo });
export const JobDecodedPayload = z.object({
  /** What the client asked for, carried on so the separator needs no database (since 2026-11; absent from older decoders). */
  options: JobOptions.optional(),
  pcmKey: z.string().min(1),
  sampleRate: z.literal(44100).describe('Of the PCM the model reads (pcmKey).'),
  channels: z.literal(2),
  frames: z.int().positive(),
  durationSec: z.number().positive(),
  /**
   * What the stems will be, resolved from the input and the options (since 2026-12; absent from
   * older decoders: 44100 Hz, the length of the PCM, the requested format).
   */
  output: z
    .object({
      sampleRate: z.int().positive(),
      frames: z.int().positive().describe('Exact length of every stem (the input window at its own rate).'),
      format: AudioFormat,
      nativeKey: z.string().min(1).optional().describe('The input at sampleRate (stereo f32le), when that is not 44100: the mix the residual is taken from.'),
    })
    .optional(),
  /**
   * A preview (options start/duration), in 44.1 kHz frames of the whole track: the PCM at pcmKey
   * holds [storedFrom, storedFrom + frames) — the window with a model segment either side — so,
   * with the whole track's stats, the window is separated exactly as the whole song would be.
   */
  window: z
    .object({
      trackFrames: z.int().positive(),
      storedFrom: z.int().nonnegative(),
      from: z.int().nonnegative(),
      to: z.int().positive(),
    })
    .optional(),
  /** Mean and std of the whole track's mono mix (Demucs's normalization), measured while decoding (since 2026-12; absent: the separator measures them). */
  stats: z.object({ mean: z.number(), std: z.number().positive() }).optional(),
});
export const JobProgressPayload = z.object({
  stage: JobStage,
  /** Progress over the whole job, 0..1. */
  progress: z.number().min(0).max(1),
  chunk: z.object({ index: z.int().nonnegative(), count: z.int().positive() }).optional(),
  etaSec: z.number().nonnegative().optional(),
  readySec: z.number().nonnegative().optional().describe('Seconds of every stem already final and readable while the job runs (since 2026-12).'),
  bytes: z
    .object({ received: z.int().nonnegative(), total: z.int().nonnegative().optional() })
    .optional()
    .describe('importing: bytes of the input fetched so far, and what the source announced (since 2026-12).'),
});
/** Seconds and counts of the work that made the stems (this delivery's, when a job was resumed). */
export const Timings = z
  .object({
    separateSec: z.number().nonnegative().optional().describe('Wall time of the chunks through the model (s).'),
    encodeSec: z.number().nonnegative().optional().describe('Wall time of assembling and encoding the stems (s).'),
    wallSec: z.number().nonnegative().optional().describe('separateSec + encodeSec.'),
    modelRunSec: z.number().nonnegative().optional().describe("Σ of the model's runs for this job (s), not the process's total."),
    realtimeFactor: z.number().nonnegative().optional().describe('separateSec ÷ the audio duration (below 1: faster than real time).'),
    chunks: z.int().nonnegative().optional().describe('Model runs of the job (every shift included).'),
  })
  .catchall(z.number().nonnegative())
  .describe('Empty for stems reused from an identical earlier job (see reusedFrom).');
export const JobCompletedPayload = z.object({
  stems: z.array(StemObject).min(1),
  model: z.string(),
  timings: Timings,
  durationSec: z.number().positive().optional().describe('Duration of the input, and of every stem (s). Set by producers since 2026-11.'),
  sampleRate: z.int().positive().optional().describe("Sample rate of every stem: the input's own unless 44100 was asked for (since 2026-12; before, always 44100). Set by producers since 2026-11."),
  channels: z.int().positive().optional().describe('Channels of every stem (2). Set by producers since 2026-11.'),
  report: QualityReport.optional().describe('Residual, peaks and rescale gains of the stems (since 2026-12).'),
  reusedFrom: JobId.optional().describe('The earlier job whose stems were copied (an identical upload): nothing was separated.'),
});
export const JobFailedPayload = z.object({
  stage: z.string().describe('Where it failed: importing, decoding, separating, encoding, status, webhook.'),
  reason: z.string().min(1).describe('A sentence a user understands.'),
  code: z.string().min(1),
  retryable: z.literal(false),
});
export const JobCanceledPayload = z.object({}).strict();
/** The webhook service reports how the delivery of a job's end went (the read model records it). */
export const JobWebhookPayload = z.object({
  outcome: z.enum(['delivered', 'failed', 'retrying']).describe('retrying: an attempt failed and another is scheduled (since 2026-12); failed: given up.'),
  event: z.enum(['job.completed', 'job.failed', 'job.canceled']).describe('The event delivered (its id is the webhook-id).'),
  webhookId: z.string().min(1).describe('The webhook-id header the receiver saw (the event id).'),
  url: z.string().describe('The receiver, credentials and query redacted.'),
  attempts: z.int().positive(),
  status: z.int().optional().describe("The receiver's last HTTP status, when it answered."),
  reason: z.string().optional().describe('Why the last attempt failed (failed and retrying).'),
  nextAttemptAt: z.iso.datetime().optional().describe('retrying: the latest time the next attempt is made (since 2026-12).'),
});

export const JobCreated = envelope('job.created', 1, JobCreatedPayload);
export const JobImported = envelope('job.imported', 1, JobImportedPayload);
export const JobDecoded = envelope('job.decoded', 1, JobDecodedPayload);
export const JobProgress = envelope('job.progress', 1, JobProgressPayload);
export const JobCompleted = envelope('job.completed', 1, JobCompletedPayload);
export const JobFailed = envelope('job.failed', 1, JobFailedPayload);
export const JobCanceled = envelope('job.canceled', 1, JobCanceledPayload);
export const JobWebhook = envelope('job.webhook', 1, JobWebhookPayload);

/** Event name → schema. The single table every publisher and consumer goes through. */
export const EVENTS = {
  'job.created': JobCreated,
  'job.imported': JobImported,
  'job.decoded': JobDecoded,
  'job.progress': JobProgress,
  'job.completed': JobCompleted,
  'job.failed': JobFailed,
  'job.canceled': JobCanceled,
  'job.webhook': JobWebhook,
} as const;

export type EventName = keyof typeof EVENTS;
export const EVENT_NAMES = Object.keys(EVENTS) as EventName[];
export type EventOf<N extends EventName> = z.infer<(typeof EVENTS)[N]>;
export type PayloadOf<N extends EventName> = EventOf<N>['payload'];
export type AnyEvent = { [N in EventName]: EventOf<N> }[EventName];
export const AnyEvent = z.discriminatedUnion('type', [JobCreated, JobImported, JobDecoded, JobProgress, JobCompleted, JobFailed, JobCanceled, JobWebhook]);

export const isEventName = (s: unknown): s is EventName => typeof s === 'string' && s in EVENTS;
