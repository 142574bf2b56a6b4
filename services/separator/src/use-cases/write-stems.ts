/**
 * The model's stems (44.1 kHz, in track order, as they become final) → the job's stem files: at
 * the stems' rate and exact length, each output mixed (the residual where asked), its gain and
 * clamp applied, measured, encoded, and — for a job whose stems stream — stored in pieces while it
 * runs; uploaded whole at the end. The same chain measures the peaks that clip=rescale needs.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FORMAT_CONTENT_TYPE, SAMPLE_RATE, isWav, wavFramesIn } from '@stemflow/audio';
import { FORMAT_EXT, type AudioFormat, type JobOptions, type QualityReport, type StemObject, objectKeys } from '@stemflow/contracts';
import { sha256Passing, type BlobStore } from '@stemflow/storage';
import type { Logger } from '@stemflow/telemetry';
import { exactLength, resampleBlocks, type Block } from '../adapters/resample.js';
import { liveManifest, openSink, StemBytes, streamable, type StemSink } from '../adapters/stem-files.js';
import { sequentialPcm } from '../adapters/work-store.js';
import { dB, StemMixer, type Output } from '../core/assemble.js';
import { PLANES } from '../core/pass.js';

export type StemsSpec = {
  jobId: string;
  outs: Output[];
  format: AudioFormat;
  sampleRate: number;
  /** Exact length of every stem. */
  frames: number;
  clip: JobOptions['clip'];
  residual: boolean;
  /** The mix at the stems' rate (interleaved stereo f32), from frame `skip`: the residual's source, and the reference it is measured against. */
  mix: { key: string; skip: number };
  /** Store pieces while writing, for the gateway to stream. */
  live: boolean;
};

export type WriteHooks = {
  /** Seconds of every stem stored so far (live stems), called as pieces are stored. */
  onReady?: (sec: number) => Promise<void>;
  isCanceled?: () => Promise<boolean>;
};

type Deps = { blobs: BlobStore; log: Logger };

/** The chain up to the mixer: the blocks at the stems' rate, exactly `frames` long, with the mix beside them. */
async function* atRate(d: Deps, spec: StemsSpec, source: AsyncIterable<Block>): AsyncGenerator<{ data: Float32Array; n: number; mix: Float32Array }> {
  const blocks = exactLength(spec.sampleRate === SAMPLE_RATE ? source : resampleBlocks(source, SAMPLE_RATE, spec.sampleRate, PLANES), spec.frames, PLANES);
  const mix = sequentialPcm(d.blobs, spec.mix.key);
  try {
    if (spec.mix.skip) await mix.read(spec.mix.skip);
    for await (const b of blocks) yield { ...b, mix: await mix.read(b.n) };
  } finally {
    mix.close();
  }
}

/** Each output's peak, before any gain (what clip=rescale scales by). */
export async function measurePeaks(d: Deps, spec: StemsSpec, source: AsyncIterable<Block>): Promise<number[]> {
  const mixer = new StemMixer(spec.outs, spec.residual, spec.format, spec.clip, spec.outs.map(() => 1), true);
  for await (const b of atRate(d, spec, source)) mixer.block(b.data, b.n, b.mix);
  return mixer.peaks;
}

/** Writes the stems with these gains; undefined if the job was canceled meanwhile. */
export async function writeStems(d: Deps, spec: StemsSpec, source: AsyncIterable<Block>, gains: number[], hooks: WriteHooks = {}): Promise<{ stems: StemObject[]; report: QualityReport } | undefined> {
  const { jobId: id, outs, format } = spec;
  const ext = FORMAT_EXT[format];
  const dir = await mkdtemp(join(tmpdir(), `stemflow-${id}-`));
  const files: StemBytes[] = [];
  const sinks: StemSink[] = [];
  let flusher: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  try {
    const manifest = liveManifest(format, spec.sampleRate, spec.frames);
    // Stored in pieces while the job runs (MP3 below 32 kHz cannot be: its header comes last).
    const live = spec.live && streamable(format, spec.sampleRate);
    for (const o of outs) {
      const file = join(dir, `${o.name}.${ext}`);
      // Not streamed, an encoder writes its own file, seekable: FLAC gets its MD5 and seek table, MP3 its gapless header, at the end.
      const bytes = !isWav(format) && !live ? undefined : await StemBytes.open(file, live ? { blobs: d.blobs, jobId: id, stem: o.name, manifest } : undefined);
      if (bytes) files.push(bytes);
      sinks.push(await openSink(format, spec.sampleRate, spec.frames, bytes, file, o.name));
    }
    const mixer = new StemMixer(outs, spec.residual, format, spec.clip, gains);

    // Pieces are stored as the bytes come, and at least every 300 ms: the next block may be a model run away.
    let readySent = 0;
    let lastSent = 0;
    let flushError: unknown;
    // What an earlier attempt stored counts as ready from the start (a WAV's bytes say how many frames).
    const before = files.map((f) => (isWav(format) ? wavFramesIn(format, f.storedBefore) : 0));
    const flush = (final = false) =>
      (flushing = flushing.then(async () => {
        const ready = Math.min(...sinks.map((s, k) => Math.max(s.framesOut(), before[k] ?? 0))) / spec.sampleRate;
        await Promise.all(files.map((f) => f.flush()));
        if (hooks.onReady && ready > readySent && (final || lastSent === 0 || performance.now() - lastSent > 1000)) {
          readySent = ready;
          lastSent = performance.now();
          await hooks.onReady(ready);
        }
      }));
    if (live) flusher = setInterval(() => void flush().catch((err: unknown) => (flushError ??= err)), 300);

    let lastCancelCheck = performance.now();
    for await (const b of atRate(d, spec, source)) {
      if (flushError !== undefined) throw flushError;
      if (hooks.isCanceled && performance.now() - lastCancelCheck > 1000) {
        lastCancelCheck = performance.now();
        if (await hooks.isCanceled()) return undefined;
      }
      const rendered = mixer.block(b.data, b.n, b.mix);
      await Promise.all(sinks.map((s, k) => s.write(rendered[k]!, b.n)));
    }
    await Promise.all(sinks.map((s) => s.finish()));
    clearInterval(flusher);
    if (live) await flush(true);
    await flushing;
    if (flushError !== undefined) throw flushError;
    for (const f of files) await f.close();
    // Canceled or deleted meanwhile: nothing is stored under a job that is gone.
    if (hooks.isCanceled && (await hooks.isCanceled())) return undefined;

    const stems: StemObject[] = [];
    for (const o of outs) {
      const file = join(dir, `${o.name}.${ext}`);
      const key = objectKeys.stem(id, o.name, ext);
      const size = (await stat(file)).size;
      // Hashed on the way to the store: consumers check what they download.
      const hashed = sha256Passing(createReadStream(file));
      await d.blobs.put(key, hashed.stream, { size, contentType: FORMAT_CONTENT_TYPE[format] });
      stems.push({ name: o.name, format, key, bytes: size, sha256: hashed.digest() });
    }
    const report: QualityReport = {
      sample_rate: spec.sampleRate,
      frames: spec.frames,
      residual_db: round2(mixer.residualDb()),
      stems: outs.map((o, k) => ({ name: o.name, peak: round6(mixer.peaks[k]!), peak_db: round2(dB(mixer.peaks[k]! ** 2)), gain: round6(gains[k]!) })),
    };
    return { stems, report };
  } finally {
    // Every path (done, canceled, stopped, a store or encoder failure) ends every encoder and file.
    clearInterval(flusher);
    // A piece being stored lands before the caller clears the work area, not after it.
    await flushing.catch(() => {});
    // Waited for: when the writer returns, no ffmpeg of it is left (killed and reaped).
    await Promise.all(sinks.map((s) => s.kill()));
    for (const f of files) await f.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
