/**
 * job.created → 44.1 kHz stereo float PCM in the store → job.decoded. Idempotent: a redelivery
 * whose PCM is complete (its manifest written after it) only announces it again. Anything that is
 * not usable audio fails the job with a reason a user understands.
 */
import { BYTES_PER_FRAME, CHANNELS, STEM_DEMUXER, rateFor, SAMPLE_RATE, SNIFF_BYTES, decodeToPcm, lastLine, probe, sniffMedia, type MediaType } from '@stemflow/audio';
import { MonoStats, SEGMENT, maxFramesForRuns, modelRuns } from '@stemflow/models/shape';
import { newEvent, type Cancellations, type EventBus } from '@stemflow/bus';
import { DECODE_SHARE, StemflowError, type AudioFormat, type EventOf, type JobOptions, type PcmManifest, objectKeys } from '@stemflow/contracts';
import { readPcmManifest, sha256Passing, writePcmManifest, type BlobStore } from '@stemflow/storage';
import type { Logger } from '@stemflow/telemetry';
import { Transform, type Readable } from 'node:stream';
import { importDefaults, importInput, type ImportConfig } from './import-input.js';

/** Everything the decoder needs comes with its events or from the store: no database. */
export type DecodeDeps = { bus: EventBus; blobs: BlobStore; log: Logger; cancels: Cancellations };
export type DecodeConfig = {
  maxDurationSec: number;
  /** A job's planned model runs (duration × shifts ÷ stride) may not exceed this (the services pass MAX_MODEL_RUNS; absent: no budget). */
  maxModelRuns?: number;
  /** Deadline of one decode, and how long ffmpeg may produce nothing. */
  timeoutSec?: number;
  stallSec?: number;
  /** Inputs given by URL: the address guard, deadline and size (defaults: public addresses, 120 s, 500 MiB). */
  import?: ImportConfig;
};
export const DECODE_DEFAULTS = { maxModelRuns: Number.POSITIVE_INFINITY, timeoutSec: 600, stallSec: 60 } as const;

/** What the decode produced: the model's PCM, and the stems' shape (absent in manifests of older decoders). */

/** A duration as a person reads it: 3:07, 1:02:03. */
const spokenDuration = (sec: number) => {
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
};
const fail = (code: string, reason: string) => new StemflowError(code, reason);

export async function decodeJob(d: DecodeDeps, e: EventOf<'job.created'>, cfg: DecodeConfig): Promise<void> {
  const id = e.jobId;
  const log = d.log.child({ jobId: id });
  if (await d.cancels.isCanceled(id)) {
    log.info('job canceled, not decoding');
    return;
  }
  if (e.payload.reuseOf) return reuseStems(d, e);

  const pcmKey = objectKeys.pcm(id);
  const done = await readPcmManifest(d.blobs, id);
  if (done && (await d.blobs.head(pcmKey))?.size === done.frames * BYTES_PER_FRAME && (!done.output?.nativeKey || (await d.blobs.head(done.output.nativeKey))?.size === done.output.frames * BYTES_PER_FRAME)) {
    log.info('PCM already complete, announcing it again');
    await announce(d, e, pcmKey, done);
    return;
  }

  // An input given by URL is fetched first (the job's `importing` stage).
  const input = e.payload.input ?? (await importInput(d, e, cfg.import ?? importDefaults()));
  if (!input) return;
  const media = await sniffStored(d.blobs, input.key);
  const src = { location: await d.blobs.sourceUrl(input.key), media };
  const info = await probe(src);
  if (!info.audio) throw fail('NO_AUDIO_STREAM', info.hasVideo ? 'The video has no audio track.' : 'The file has no audio track.');
  const opts = e.payload.options;
  const out = outputOf(opts, info.audio);
  // A preview window: only that part is separated and counted (quota, cost). The whole file is
  // decoded (its length and normalization are the full song's), the part around the window kept.
  // The duration a header states is a hint, never a refusal: a header can claim hours for a file
  // of seconds. Every limit is enforced on what decoding produces; when decoding reaches one, the
  // file holds at least that much, and a header that says more is believed for the sentence.
  const whole = info.durationSec ?? info.audio.durationSec;
  const inRate = info.audio.sampleRate || SAMPLE_RATE;
  const window = opts.start > 0 || opts.duration !== undefined ? { startSample: Math.round(opts.start * inRate), endSample: opts.duration !== undefined ? Math.round((opts.start + opts.duration) * inRate) : undefined } : undefined;
  // The API key's audio minutes left today, when it has a daily quota (checked, then enforced while reading).
  const quota = e.payload.quota;
  const quotaSec = quota?.audioSecLeft ?? Number.POSITIVE_INFINITY;
  const overQuota = (what: string) =>
    fail('QUOTA_EXCEEDED', `${what}; this API key had ${spokenDuration(quotaSec)} of its ${quota?.minutesPerDay} audio minutes left for today (UTC) when the job was submitted.`);
  // What the job may cost: enforced while decoding (decoding stops where the cost would be exceeded).
  const maxRuns = cfg.maxModelRuns ?? DECODE_DEFAULTS.maxModelRuns;
  const { shifts, overlap } = e.payload.options;
  const costText = (sec: number) =>
    `separating ${spokenDuration(sec)} of audio with shifts ${shifts} and overlap ${overlap} would take ${modelRuns(Math.round(sec * SAMPLE_RATE), e.payload.options).toLocaleString('en')} model runs; this server allows at most ${maxRuns.toLocaleString('en')} per job (use fewer shifts, less overlap or a shorter file)`;
  const costSec = maxFramesForRuns(maxRuns, e.payload.options) / SAMPLE_RATE;
  // A window's cost and quota are checked once decoded: what the file holds beyond it costs nothing.
  const limitSec = window ? cfg.maxDurationSec : Math.min(cfg.maxDurationSec, costSec, quotaSec);
  const win44 = window ? { from: Math.round(opts.start * SAMPLE_RATE), to: opts.duration !== undefined ? Math.round((opts.start + opts.duration) * SAMPLE_RATE) : Number.POSITIVE_INFINITY } : undefined;
  const keep = win44 ? { from: Math.max(0, win44.from - SEGMENT), to: win44.to + SEGMENT } : undefined;
  const stats = new MonoStats();

  let lastSent = 0;
  const nativeKey = out.sampleRate !== SAMPLE_RATE ? objectKeys.nativePcm(id) : undefined;
  const run = decodeToPcm(src, {
    window,
    nativeRate: nativeKey ? out.sampleRate : undefined,
    maxSec: limitSec,
    tooLong: () => {
      // The header's length, now that decoding proved the file at least this long (unless it says less).
      const claimed = whole !== undefined && whole > limitSec ? whole : undefined;
      if (limitSec === quotaSec && quotaSec < Math.min(cfg.maxDurationSec, costSec)) {
        return overQuota(claimed ? `The audio is ${spokenDuration(claimed)} long` : `The audio is longer than ${spokenDuration(quotaSec)}; decoding stopped there`);
      }
      if (limitSec < cfg.maxDurationSec) {
        return fail('COST_LIMIT', claimed ? `The job is too costly: ${costText(claimed)}.` : `The job is too costly: the file holds more than ${spokenDuration(limitSec)} of audio, and ${costText(limitSec + 1)}. Decoding stopped there.`);
      }
      return fail('TOO_LONG', claimed ? `The audio is ${spokenDuration(claimed)} long; this server accepts at most ${spokenDuration(cfg.maxDurationSec)}.` : `The audio is longer than this server accepts (${spokenDuration(cfg.maxDurationSec)}); decoding stopped there.`);
    },
    timeoutMs: (cfg.timeoutSec ?? DECODE_DEFAULTS.timeoutSec) * 1000,
    stallMs: (cfg.stallSec ?? DECODE_DEFAULTS.stallSec) * 1000,
    onProgress: (sec) => {
      if (!whole || Date.now() - lastSent < 1000) return;
      lastSent = Date.now();
      const p = Math.min(1, sec / whole) * DECODE_SHARE;
      d.bus.publish(newEvent('job.progress', id, { stage: 'decoding', progress: p })).catch(() => {});
    },
  });
  // A cancel stops ffmpeg at once (checked twice a second, from what this instance received).
  let canceled = false;
  const watch = setInterval(() => {
    if (d.cancels.seen(id)) {
      canceled = true;
      run.kill();
    }
  }, 500);
  let failure: unknown;
  try {
    await Promise.all([
      d.blobs.put(pcmKey, kept(run.pcm, keepFrames(keep ?? { from: 0, to: Number.POSITIVE_INFINITY }, stats)), { contentType: 'application/octet-stream' }),
      ...(nativeKey && run.native ? [d.blobs.put(nativeKey, run.native.pcm, { contentType: 'application/octet-stream' })] : []),
    ]);
  } catch (err) {
    run.kill();
    failure = err;
  } finally {
    clearInterval(watch);
  }
  const removePcm = async () => {
    await d.blobs.delete(pcmKey).catch(() => {});
    if (nativeKey) await d.blobs.delete(nativeKey).catch(() => {});
  };
  // A write that failed because the job was deleted under it (its folder removed), or canceled, is the job's end, not a failure.
  if (failure !== undefined && !canceled) canceled = d.cancels.seen(id) || !(await d.blobs.head(input.key).catch(() => ({ size: -1 })));
  if (failure !== undefined || canceled) {
    await removePcm();
    if (canceled) return void log.info('canceled or deleted while decoding, stopped');
    throw failure;
  }
  const { code, stderr } = await run.done;
  const trackFrames = Math.floor(run.outputBytes() / BYTES_PER_FRAME);
  const trackSec = trackFrames / SAMPLE_RATE;
  // What is separated: the window (within the track), or the track.
  const from = win44 ? Math.min(win44.from, trackFrames) : 0;
  const to = win44 ? Math.min(win44.to, trackFrames) : trackFrames;
  const decodedSec = (to - from) / SAMPLE_RATE;
  const frames = keep ? Math.max(0, Math.min(keep.to, trackFrames) - keep.from) : trackFrames;
  const rejectPcm = async (err: StemflowError) => {
    await removePcm();
    throw err;
  };

  if (win44 && trackFrames > 0 && to <= from) {
    return rejectPcm(fail('WINDOW_OUTSIDE', `The preview starts at ${spokenDuration(opts.start)}, after the end of the ${spokenDuration(trackSec)} of audio in the file.`));
  }
  if (trackFrames === 0) {
    return rejectPcm(code === 0 ? fail('EMPTY_AUDIO', 'The file contains no audio samples.') : fail('NOT_AUDIO', `The file could not be decoded as audio (${lastLine(stderr)}).`));
  }
  if (trackSec > cfg.maxDurationSec) {
    return rejectPcm(fail('TOO_LONG', `The audio is longer than this server accepts (${spokenDuration(cfg.maxDurationSec)}).`));
  }
  if (decodedSec > quotaSec + 0.05) return rejectPcm(overQuota(`The audio is ${spokenDuration(decodedSec)} long`));
  if (win44 && modelRuns(to - from + SEGMENT, opts) > maxRuns) return rejectPcm(fail('COST_LIMIT', `The job is too costly: ${costText(decodedSec)}.`));
  // Less than the header says (a file cut off, or a header that lies): what decodes is the song.
  if (whole !== undefined && trackSec < whole * 0.9 && whole - trackSec > 1) log.warn({ decodedSec: trackSec, headerSec: whole }, 'the file holds less audio than its header says; separating what it holds');
  if (code !== 0) log.warn({ code, ffmpeg: lastLine(stderr) }, 'ffmpeg reported errors, but decoded what the file states');

  // The stems' exact length: the window's samples at their rate, as ffmpeg decoded them.
  const outFrames = nativeKey ? Math.floor((run.native?.bytes() ?? 0) / BYTES_PER_FRAME) : to - from;
  const manifest: PcmManifest = {
    frames,
    durationSec: decodedSec,
    output: { sampleRate: out.sampleRate, frames: outFrames, format: out.format, ...(nativeKey ? { nativeKey } : {}) },
    ...(keep ? { window: { trackFrames, storedFrom: keep.from, from, to } } : {}),
    stats: stats.result(),
  };
  await writePcmManifest(d.blobs, id, manifest);
  log.info({ frames, durationSec: decodedSec, format: info.formatName, codec: info.audio.codec }, 'decoded');
  await announce(d, e, pcmKey, manifest);
}

/** The stored input's container, from its own first bytes: decides the one demuxer ffmpeg may use. */
async function sniffStored(blobs: BlobStore, key: string): Promise<MediaType> {
  const stored = await blobs.head(key);
  if (!stored) throw fail('INPUT_GONE', 'The uploaded file is no longer stored (the job was deleted?).');
  if (stored.size === 0) throw fail('EMPTY_FILE', 'The file is empty.');
  const head: Buffer[] = [];
  for await (const c of await blobs.get(key, { start: 0, end: Math.min(SNIFF_BYTES, stored.size) - 1 })) head.push(c as Buffer);
  try {
    return await sniffMedia(Buffer.concat(head));
  } catch (err) {
    const why = err instanceof StemflowError ? err.message : String(err);
    throw fail('UNSUPPORTED_MEDIA_TYPE', `${why[0]!.toUpperCase()}${why.slice(1)}.`);
  }
}

async function announce(d: DecodeDeps, e: EventOf<'job.created'>, pcmKey: string, m: PcmManifest) {
  // The options travel on: the separator reads no database.
  await d.bus.publish(
    newEvent('job.decoded', e.jobId, { options: e.payload.options, pcmKey, sampleRate: SAMPLE_RATE, channels: CHANNELS, ...m }),
  );
}

/** `src` through `t`, which ends with the error that ends `src` (a limit, a kill). */
const kept = (src: Readable, t: Transform) => {
  src.on('error', (err) => t.destroy(err));
  return src.pipe(t);
};

/** Passes on only the frames in [from, to) of interleaved stereo f32, measuring every frame on the way. */
function keepFrames(keep: { from: number; to: number }, stats: MonoStats): Transform {
  let at = 0; // bytes seen
  const lo = keep.from * BYTES_PER_FRAME;
  const hi = keep.to * BYTES_PER_FRAME;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      stats.add(chunk);
      const a = Math.max(lo, at);
      const b = Math.min(hi, at + chunk.length);
      at += chunk.length;
      cb(null, b > a ? chunk.subarray(a - (at - chunk.length), b - (at - chunk.length)) : undefined);
    },
  });
}

/**
 * The stems' rate and format, from the options and the input: its own rate unless 44100 was asked
 * (MP3 takes the nearest rate it has at or above, at most 48 kHz); `wav` follows its bit depth.
 */
export function outputOf(opts: Pick<JobOptions, 'sample_rate' | 'format'>, audio: { sampleRate: number; bits: number; float: boolean }): { sampleRate: number; format: AudioFormat } {
  const format: AudioFormat = opts.format !== 'wav' ? opts.format : audio.float ? 'f32' : audio.bits >= 24 ? 'wav24' : 'wav16';
  return { sampleRate: rateFor(format, opts.sample_rate === '44100' || !audio.sampleRate ? SAMPLE_RATE : audio.sampleRate), format };
}

/** The same input and options were separated before: copy that job's stems (listed in the event), separate nothing. */
async function reuseStems(d: DecodeDeps, e: EventOf<'job.created'>) {
  const fromId = e.payload.reuseOf!;
  const from = e.payload.reuseStems;
  const input = e.payload.input;
  if (!from || !input) throw new StemflowError('REUSE_UNLISTED', `the job to reuse (${fromId}) came without its stems (from an older gateway): upload the file again`);
  // The duration job.completed reports: the input's, as ffprobe reads it (nothing is decoded).
  const media = await sniffStored(d.blobs, input.key);
  const info = await probe({ location: await d.blobs.sourceUrl(input.key), media });
  const stems = [];
  for (const s of from) {
    const key = objectKeys.inJob(s.key, fromId, e.jobId);
    let sha256 = s.sha256;
    if ((await d.blobs.head(key))?.size !== s.bytes || !sha256) {
      if (!(await d.blobs.head(s.key))) throw new StemflowError('REUSE_GONE', `the job ${fromId} whose stems were to be reused is gone`);
      const hashed = sha256Passing(await d.blobs.get(s.key));
      await d.blobs.put(key, hashed.stream);
      sha256 = hashed.digest();
    }
    stems.push({ ...s, key, sha256 });
  }
  // The stems' rate and length, as their own header says (the input's rate since 2026-12, 44.1 kHz
  // before; a preview's stems are its window, not the file).
  const first = stems[0]!;
  const own = await probe({ location: await d.blobs.sourceUrl(first.key), media: { demuxer: STEM_DEMUXER[first.format], demuxerOptions: [] } }).catch(() => undefined);
  const sampleRate = own?.audio?.sampleRate || undefined;
  const durationSec = own?.durationSec ?? info.durationSec ?? info.audio?.durationSec;
  await d.bus.publish(
    newEvent('job.completed', e.jobId, {
      stems,
      model: 'htdemucs',
      timings: {},
      reusedFrom: fromId,
      channels: 2,
      ...(durationSec ? { durationSec } : {}),
      ...(sampleRate ? { sampleRate } : {}),
      // The copied stems are the earlier job's bytes: its report is theirs.
      ...(e.payload.reuseReport ? { report: e.payload.reuseReport } : {}),
    }),
  );
}
