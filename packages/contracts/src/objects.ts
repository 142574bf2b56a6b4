/**
 * The object layout: every object a job has in the store, named here and nowhere else, as the
 * queue topology is for the bus. Services build keys with `objectKeys` and read the small JSON
 * objects some of them leave for others (markers, manifests, targets) with the schemas below.
 *
 * ```
 * jobs/{id}/input/source                the upload, or the imported file (a neutral name: nothing the client chose reaches ffmpeg)
 * jobs/{id}/import.json                 ImportTarget: the whole URL an input is imported from (gateway → decoder)
 * jobs/{id}/created.json                the job.created event as published (gateway → embedded resume)
 * jobs/{id}/webhook.json                WebhookTarget: where the job's end is POSTed (gateway → webhooks)
 * jobs/{id}/canceled                    the cancel marker: an ISO time, text/plain (gateway → decoder, separator)
 * jobs/{id}/pcm/mix.f32                 the model's input: 44.1 kHz stereo f32, interleaved (decoder → separator)
 * jobs/{id}/pcm/mix.json                PcmManifest: what the decode produced (decoder, for a redelivery)
 * jobs/{id}/pcm/native.f32              the input at the stems' rate when that is not 44.1 kHz (decoder → separator)
 * jobs/{id}/work/plan.json              the separator's chunk plan
 * jobs/{id}/work/pass-{p}/chunk-{k}.bin the checkpoint of each finished chunk
 * jobs/{id}/work/live/{stem}.json       LiveManifest: a stem being made (separator → gateway)
 * jobs/{id}/work/live/{stem}/{offset}   its bytes, in pieces named by their offset (separator → gateway)
 * jobs/{id}/stems/{stem}.{ext}          the stems (separator → gateway, consumers of job.completed)
 * jobs/{id}/completed.json              CompletedMarker: left once job.completed is published (separator, for a redelivery)
 * jobs/{id}/peaks/{stem}.{spp}.json     waveform peaks, made on first request (gateway)
 * jobs/{id}/mixes/{hash}.{ext}          mixdowns, made on first request (gateway)
 * ```
 *
 * Everything of a job lives under its prefix, so deleting the prefix deletes the job's objects.
 */
import { z } from 'zod';
import { JobCompletedPayload, JobDecodedPayload } from './events.js';
import { AudioFormat } from './job.js';

/** Where every job's objects live. */
export const JOBS_PREFIX = 'jobs/';
const JOB = /^jobs\/([^/]+)\//;
const INPUT = /^jobs\/[^/]+\/input\//;

export const objectKeys = {
  job: (id: string) => `${JOBS_PREFIX}${id}/`,
  input: (id: string) => `${JOBS_PREFIX}${id}/input/source`,
  importSource: (id: string) => `${JOBS_PREFIX}${id}/import.json`,
  created: (id: string) => `${JOBS_PREFIX}${id}/created.json`,
  webhook: (id: string) => `${JOBS_PREFIX}${id}/webhook.json`,
  canceled: (id: string) => `${JOBS_PREFIX}${id}/canceled`,
  pcm: (id: string) => `${JOBS_PREFIX}${id}/pcm/mix.f32`,
  pcmManifest: (id: string) => `${JOBS_PREFIX}${id}/pcm/mix.json`,
  nativePcm: (id: string) => `${JOBS_PREFIX}${id}/pcm/native.f32`,
  /** The separator's work area: the plan, the checkpoints of every pass, the pieces of stems being streamed. */
  work: (id: string) => `${JOBS_PREFIX}${id}/work/`,
  plan: (id: string) => `${JOBS_PREFIX}${id}/work/plan.json`,
  pass: (id: string, pass: number) => `${JOBS_PREFIX}${id}/work/pass-${pass}/`,
  checkpoint: (id: string, pass: number, chunk: number) => `${JOBS_PREFIX}${id}/work/pass-${pass}/chunk-${String(chunk).padStart(5, '0')}.bin`,
  /** The chunk index of a checkpoint's key (the inverse of checkpoint), or -1. */
  checkpointChunk: (key: string) => Number(/chunk-(\d+)\.bin$/.exec(key)?.[1] ?? -1),
  /**
   * What a job makes on its way to its stems (the decoded PCM, the work area): of no use once the
   * job failed or was canceled, so removed then rather than at its expiry.
   */
  intermediates: (id: string) => [`${JOBS_PREFIX}${id}/pcm/`, objectKeys.work(id)],
  liveStem: (id: string, stem: string) => `${JOBS_PREFIX}${id}/work/live/${stem}/`,
  livePart: (id: string, stem: string, offset: number) => `${JOBS_PREFIX}${id}/work/live/${stem}/${String(offset).padStart(13, '0')}`,
  /** The offset in the file of the piece stored under `key` (the inverse of livePart). */
  livePartOffset: (key: string) => Number(key.slice(key.lastIndexOf('/') + 1)),
  liveManifest: (id: string, stem: string) => `${JOBS_PREFIX}${id}/work/live/${stem}.json`,
  stem: (id: string, stem: string, ext: string) => `${JOBS_PREFIX}${id}/stems/${stem}.${ext}`,
  completed: (id: string) => `${JOBS_PREFIX}${id}/completed.json`,
  peaks: (id: string, stem: string, samplesPerPixel: number) => `${JOBS_PREFIX}${id}/peaks/${stem}.${samplesPerPixel}.json`,
  /** A mixdown of some stems with gains; `name` is the request's hash. */
  mix: (id: string, name: string, ext: string) => `${JOBS_PREFIX}${id}/mixes/${name}.${ext}`,
  /** The job a key belongs to, or undefined for a key outside every job. */
  jobOf: (key: string) => JOB.exec(key)?.[1],
  /** Whether a key is a job's input (an upload's object). */
  isInput: (key: string) => INPUT.test(key),
  /** The same object's key in another job (a reused stem). */
  inJob: (key: string, from: string, to: string) => {
    const prefix = objectKeys.job(from);
    if (!key.startsWith(prefix)) throw new Error(`${key} is not an object of job ${from}`);
    return objectKeys.job(to) + key.slice(prefix.length);
  },
};

/** What the gateway needs to serve a stem while it is made (written by the separator before the first piece). */
export const LiveManifest = z.object({
  format: AudioFormat,
  contentType: z.string(),
  sampleRate: z.int().positive(),
  frames: z.int().nonnegative(),
  /** The stem's final length in bytes, once known (null while it grows). */
  bytes: z.int().nonnegative().nullable(),
});
export type LiveManifest = z.infer<typeof LiveManifest>;

/** Where a job's end is POSTed: written by the gateway before job.created, read by the webhook service. */
export const WebhookTarget = z.object({ url: z.string(), owner: z.string().nullable() });
export type WebhookTarget = z.infer<typeof WebhookTarget>;

/** Where an input given by URL is fetched from: the whole URL (events and the read model carry it redacted). */
export const ImportTarget = z.object({ url: z.string() });
export type ImportTarget = z.infer<typeof ImportTarget>;

/** The cancel marker's body: when the job was canceled (text/plain). Its presence is what counts. */
export const CanceledMarker = z.iso.datetime();

/** What the decode produced (`pcm/mix.json`): a redelivered job.created announces it again without decoding. */
export const PcmManifest = JobDecodedPayload.pick({ frames: true, durationSec: true, output: true, window: true, stats: true });
export type PcmManifest = z.infer<typeof PcmManifest>;

/** Left by the separator once job.completed is published (`completed.json`): a redelivery separates nothing. */
export const CompletedMarker = JobCompletedPayload.pick({ stems: true, timings: true, report: true });
export type CompletedMarker = z.infer<typeof CompletedMarker>;
