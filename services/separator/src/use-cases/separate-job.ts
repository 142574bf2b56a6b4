/**
 * job.decoded → stems in the store → job.completed.
 * 1. Track statistics (mean/std of the mono mix) for Demucs's input normalization: one streaming read.
 * 2. One pass per shift: chunks run through the model; each finished region is checkpointed in
 *    the store with the carry needed to continue, so a redelivered job resumes after its last chunk.
 * 3. Assembly: checkpointed regions → de-normalized, averaged over shifts, clipped as asked,
 *    encoded by ffmpeg per stem, uploaded.
 * Cancel is honoured between chunks; progress and ETA are published per chunk.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FORMAT_CONTENT_TYPE, SAMPLE_RATE, startEncoder } from '@stemflow/audio';
import { newEvent, type Cancellations, type EventBus } from '@stemflow/bus';
import { DECODE_SHARE, FORMAT_EXT, SEPARATE_SHARE, StemflowError, type EventOf, type JobOptions, type StemObject } from '@stemflow/contracts';
import { HTDEMUCS } from '@stemflow/models';
import { keys, sha256Passing, type BlobStore } from '@stemflow/storage';
import { type Logger, SpanKind, separationRealtimeFactor, withSpan } from '@stemflow/telemetry';
import { mixReader, trackStats, WorkStore } from '../adapters/work-store.js';
import { averagePasses, outputs, renderBlock, rescaleGain, updatePeaks } from '../core/assemble.js';
import { runPass, type Carry, type HtdemucsEngine } from '../core/index.js';
import { makePlan, type Plan } from '../core/plan.js';

/** Everything the separator needs comes with its events or from the store: no database. */
export type SeparateDeps = {
  bus: EventBus;
  blobs: BlobStore;
  log: Logger;
  cancels: Cancellations;
  engine: HtdemucsEngine;
  /**
   * Longest time one delivery is held unacked: past it, between chunks, the job is handed back to
   * the queue (a fresh job.decoded) and continues from its checkpoints, so no job, however long,
   * runs into the broker's consumer timeout.
   */
  maxHoldMs?: number | undefined;
};

export async function separateJob(d: SeparateDeps, e: EventOf<'job.decoded'>): Promise<void> {
  const id = e.jobId;
  const log = d.log.child({ jobId: id });
  if (await d.blobs.head(keys.completed(id))) {
    log.info('job already completed (its stems were announced), not separating again');
    return;
  }
  if (await d.cancels.isCanceled(id)) {
    log.info('job canceled, not separating');
    return;
  }
  if (!(await d.blobs.head(e.payload.pcmKey))) {
    // Deleted (its objects are gone), or not from this deployment: nothing to separate.
    log.warn('the decoded audio is gone (the job was deleted?): dropping job.decoded');
    return;
  }
  const opts = e.payload.options;
  if (!opts) throw new StemflowError('OPTIONS_MISSING', 'The job reached the separator without its options (from a decoder older than this separator); submit it again.');
  const work = new WorkStore(d.blobs, id);
  const t0 = performance.now();
  // The engine counts model time over its life: this job's share is the difference.
  const runMs0 = d.engine.runMs;

  // The plan is stored once, so a resumed job continues with the same chunks and shifts.
  let plan = await work.plan();
  if (!plan) {
    plan = makePlan(e.payload.frames, opts, id, await trackStats(d.blobs, e.payload.pcmKey));
    await work.savePlan(plan);
  }
  const read = mixReader(d.blobs, e.payload.pcmKey, plan.length, plan.mean, plan.std);
  const total = plan.passes.reduce((n, p) => n + p.chunks.length, 0);
  let done = 0;
  let chunkMs = 0;
  let computed = 0;
  let yielded = false;

  const isCanceled = () => d.cancels.isCanceled(id);

  for (const [pi, pass] of plan.passes.entries()) {
    // Resume after the last checkpointed chunk of this pass.
    const last = await work.last(pi);
    const resume: { after: number; carry: Carry } | undefined = last ? { after: last.k, carry: last.carry } : undefined;
    if (resume) log.info({ pass: pi, resumeAfter: resume.after }, 'resuming from checkpoint');
    done += resume ? resume.after + 1 : 0;
    let tChunk = performance.now();
    const r = await runPass(d.engine, read, pass.view, pass.chunks, {
      shouldStop: async () => {
        if (await isCanceled()) return true;
        // Yield only after progress in this delivery, so a redelivery always moves the job on.
        if (d.maxHoldMs !== undefined && computed > 0 && performance.now() - t0 > d.maxHoldMs) return (yielded = true);
        return false;
      },
      onChunk: async (k, region, carry) => {
        await withSpan(`separate chunk ${k}`, { kind: SpanKind.INTERNAL, attributes: { 'stemflow.job_id': id, 'stemflow.chunk.index': k, 'stemflow.chunk.count': pass.chunks.length, 'stemflow.pass': pi } }, () => work.checkpoint(pi, k, region, carry));
        done++;
        computed++;
        chunkMs += performance.now() - tChunk;
        tChunk = performance.now();
        const etaSec = ((chunkMs / computed) * (total - done)) / 1000 + 2;
        await d.bus.publish(newEvent('job.progress', id, { stage: 'separating', progress: DECODE_SHARE + (SEPARATE_SHARE * done) / total, chunk: { index: done - 1, count: total }, etaSec }));
      },
    }, resume);
    if (r === 'stopped' && yielded) {
      log.info({ done, total, heldSec: Math.round((performance.now() - t0) / 1000) }, 'held the job as long as allowed: handing it back to the queue to continue');
      await d.bus.publish(newEvent('job.decoded', id, e.payload));
      return;
    }
    if (r === 'stopped') {
      log.info('canceled between chunks, cleaning up');
      await work.clear();
      return;
    }
  }

  const tSep = performance.now();
  await d.bus.publish(newEvent('job.progress', id, { stage: 'encoding', progress: DECODE_SHARE + SEPARATE_SHARE, etaSec: Math.max(1, plan.length / SAMPLE_RATE / 20) }));
  const stems = await assemble(d, work, plan, opts, isCanceled);
  if (!stems) {
    log.info('canceled while encoding, cleaning up');
    await work.clear();
    return;
  }
  const tEnd = performance.now();
  const audioSec = plan.length / SAMPLE_RATE;
  // This delivery's work (a resumed job counts from where it resumed).
  const timings = {
    separateSec: (tSep - t0) / 1000,
    encodeSec: (tEnd - tSep) / 1000,
    wallSec: (tEnd - t0) / 1000,
    modelRunSec: (d.engine.runMs - runMs0) / 1000,
    realtimeFactor: (tSep - t0) / 1000 / audioSec,
    chunks: total,
  };
  // What a consumer needs without any other event: the audio's duration and shape with the stems.
  await d.bus.publish(newEvent('job.completed', id, { stems, model: HTDEMUCS.name, timings, durationSec: audioSec, sampleRate: SAMPLE_RATE, channels: 2 }));
  await d.blobs.put(keys.completed(id), Buffer.from(JSON.stringify({ stems, timings })), { contentType: 'application/json' });
  await work.clear();
  separationRealtimeFactor.observe({ device: d.engine.device }, timings.realtimeFactor);
  log.info({ ...timings, audioSec }, 'separated');
}

/** Encodes the stems from the checkpoints; undefined if the job was canceled meanwhile. */
async function assemble(d: SeparateDeps, work: WorkStore, plan: Plan, opts: JobOptions, isCanceled: () => Promise<boolean>): Promise<StemObject[] | undefined> {
  const track = () => averagePasses(plan, plan.passes.map((_, p) => work.regions(p)));
  const outs = outputs(opts);
  // Peaks first (rescale needs them before anything is written).
  const peaks = outs.map(() => 0);
  if (opts.clip === 'rescale') for await (const { data, n } of track()) updatePeaks(outs, peaks, data, n);
  const gain = peaks.map((p) => (opts.clip === 'rescale' ? rescaleGain(p) : 1));
  const id = work.jobId;
  const dir = await mkdtemp(join(tmpdir(), `stemflow-${id}-`));
  const ext = FORMAT_EXT[opts.format];
  const encoders = outs.map((o) => ({ o, file: join(dir, `${o.name}.${ext}`), enc: startEncoder(opts.format, SAMPLE_RATE, join(dir, `${o.name}.${ext}`), o.name) }));
  try {
    // One scratch buffer per encoder, reused: each write is fully taken by the pipe before the
    // next block (fresh buffers per block piled up ~850 MB of garbage on a 10-minute track).
    const scratch: Float32Array[] = encoders.map(() => new Float32Array(0));
    let lastCancelCheck = performance.now();
    for await (const { data, n } of track()) {
      if (performance.now() - lastCancelCheck > 1000) {
        lastCancelCheck = performance.now();
        if (await isCanceled()) return undefined;
      }
      await Promise.all(
        encoders.map(({ o, enc }, k) => {
          const buf = (scratch[k] = renderBlock(o, data, n, gain[k]!, opts.clip, scratch[k]!));
          return enc.write(Buffer.from(buf.buffer, 0, 8 * n));
        }),
      );
    }
    await Promise.all(encoders.map((x) => x.enc.finish()));
    const stems: StemObject[] = [];
    for (const { o, file } of encoders) {
      const key = keys.stem(id, o.name, ext);
      const bytes = (await stat(file)).size;
      // Hashed on the way to the store: consumers check what they download.
      const hashed = sha256Passing(createReadStream(file));
      await d.blobs.put(key, hashed.stream, { size: bytes, contentType: FORMAT_CONTENT_TYPE[opts.format] });
      stems.push({ name: o.name, format: opts.format, key, bytes, sha256: hashed.digest() });
    }
    return stems;
  } finally {
    // Every path (done, canceled, deleted under it, a store or encoder failure) ends every encoder.
    for (const { enc } of encoders) enc.kill();
    await rm(dir, { recursive: true, force: true });
  }
}
