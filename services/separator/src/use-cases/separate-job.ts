/**
 * job.decoded → stems in the store → job.completed.
 * 1. Track statistics (mean/std of the mono mix) for Demucs's input normalization: one streaming read.
 * 2. One pass per shift: chunks run through the model; each finished region is checkpointed in
 *    the store with the carry needed to continue, so a redelivered job resumes after its last chunk.
 * 3. The stems (use-cases/write-stems): at the stems' rate and exact length, the residual where
 *    asked, clipped as asked, encoded, uploaded. A job whose samples are final as they are made
 *    (clip=clamp, one pass) writes them while it separates and stores them in pieces the gateway
 *    streams; otherwise they are written from the checkpoints at the end (rescale: peaks first).
 * Progress and ETA are published per chunk. A cancel or a delete is a fence (JobFence): seen
 * within a quarter second, it stops the stem writer and its encoders at once, no checkpoint is
 * written after it, its runs waiting for an engine are withdrawn, the pass stops as the model run
 * in flight returns (its output unread), and what the job made is removed (its whole prefix, when
 * it was deleted) — whatever the pass was doing when it heard.
 */
import { SAMPLE_RATE } from '@stemflow/audio';
import { newEvent, type Cancellations, type EventBus } from '@stemflow/bus';
import { DECODE_SHARE, SEPARATE_SHARE, StemflowError, describeError, streamsWhileRunning, type EventOf, objectKeys } from '@stemflow/contracts';
import { HTDEMUCS } from '@stemflow/models';
import { writeCompletedMarker, type BlobStore } from '@stemflow/storage';
import { type Logger, SpanKind, separationRealtimeFactor, withSpan } from '@stemflow/telemetry';
import { mixReader, trackStats, WorkStore } from '../adapters/work-store.js';
import { averagePasses, outputs, rescaleGain } from '../core/assemble.js';
import { BlockQueue } from '../core/block-queue.js';
import { JobFence } from './job-fence.js';
import { measurePeaks, writeStems, type StemsSpec, type WriteHooks } from './write-stems.js';
import { runPass, type Carry, type HtdemucsEngine } from '../core/index.js';
import { makePlan, windowPlan, type Plan } from '../core/plan.js';

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
  /**
   * True once the process is stopping (SIGTERM: a rollout, a scale-down): the job is handed back
   * at the next chunk boundary, its finished chunks checkpointed, so another replica continues
   * it and no model run is lost.
   */
  draining?: () => boolean;
};

export async function separateJob(d: SeparateDeps, e: EventOf<'job.decoded'>): Promise<void> {
  const id = e.jobId;
  const log = d.log.child({ jobId: id });
  const fence = new JobFence(d, id);
  try {
    await separate(d, e, fence, log);
  } catch (err) {
    // A pass cut by the job's end (its PCM deleted under it, its writer stopped) is not a failure.
    if (!(await fence.ended(err))) throw err;
    log.info({ err: describeError(err) }, 'the job ended while it was being separated: stopped');
  } finally {
    fence.close();
  }
  if (await fence.ended()) await fence.cleanUp();
}

async function separate(d: SeparateDeps, e: EventOf<'job.decoded'>, fence: JobFence, log: Logger): Promise<void> {
  const id = e.jobId;
  if (await d.blobs.head(objectKeys.completed(id))) {
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
  // The graph the job asked for (a job from before the option: the full one), loaded before the clock starts.
  await d.engine.select(opts.quality ?? 'full');
  // Its runs waiting for an engine behind another job's are given up the moment its end is seen.
  fence.whenStopped(async () => d.engine.withdraw());
  const work = new WorkStore(d.blobs, id);
  const t0 = performance.now();
  // The engine counts model time over its life: this job's share is the difference.
  const runMs0 = d.engine.runMs;

  // The plan is stored once, so a resumed job continues with the same chunks and shifts.
  // A preview: the whole track's plan (its length and normalization come with the event), cut to the window.
  const win = e.payload.window;
  let plan = await work.plan();
  if (!plan) {
    // Measured while decoding (a decoder older than 2026-12: measured here, one read of the PCM).
    const stats = e.payload.stats ?? (await trackStats(d.blobs, e.payload.pcmKey));
    plan = win ? windowPlan(makePlan(win.trackFrames, opts, id, stats), win.from, win.to) : makePlan(e.payload.frames, opts, id, stats);
    await work.savePlan(plan);
  }
  const read = mixReader(d.blobs, e.payload.pcmKey, e.payload.frames, plan.mean, plan.std, win?.storedFrom ?? 0);
  // The stems' shape (from a decoder older than 2026-12: the model's rate and the PCM's length).
  const output = e.payload.output ?? { sampleRate: SAMPLE_RATE, frames: plan.length, format: opts.format === 'wav' ? 'wav16' : opts.format };
  const spec: StemsSpec = {
    jobId: id,
    outs: outputs(opts),
    format: output.format,
    sampleRate: output.sampleRate,
    frames: output.frames,
    clip: opts.clip,
    residual: opts.residual ?? false,
    mix: output.sampleRate === SAMPLE_RATE || !e.payload.output?.nativeKey ? { key: e.payload.pcmKey, skip: win ? win.from - win.storedFrom : 0 } : { key: e.payload.output.nativeKey, skip: 0 },
    live: streamsWhileRunning(opts) && plan.passes.length === 1,
  };
  let progress = DECODE_SHARE;
  let stage: 'separating' | 'encoding' = 'separating';
  // Stems that stream: written while the pass runs, from the checkpoints already made, then from each region as it is final.
  let writer: ReturnType<typeof startWriter> | undefined;
  const onReady = async (readySec: number) => {
    await d.bus.publish(newEvent('job.progress', id, { stage, progress, readySec: Math.floor(readySec * 10) / 10 }));
  };
  const total = plan.passes.reduce((n, p) => n + p.chunks.length, 0);
  let done = 0;
  let chunkMs = 0;
  let computed = 0;
  let yielded = false;

  const isCanceled = async () => fence.stopped || (await d.cancels.isCanceled(id));

  for (const [pi, pass] of plan.passes.entries()) {
    // Resume after the last checkpointed chunk of this pass.
    const last = await work.last(pi);
    const resume: { after: number; carry: Carry } | undefined = last ? { after: last.k, carry: last.carry } : undefined;
    if (resume) log.info({ pass: pi, resumeAfter: resume.after }, 'resuming from checkpoint');
    if (spec.live) {
      const w = (writer = startWriter(d, spec, plan, work, resume?.after ?? -1, { onReady, isCanceled }));
      fence.whenStopped(() => w.stop()); // its encoders end now, not after the model run in flight
    }
    done += resume ? resume.after + 1 : 0;
    let tChunk = performance.now();
    const r = await runPass(d.engine, read, pass.view, pass.chunks, {
      shouldStop: async () => {
        if (await isCanceled()) return 'now'; // the runs in flight are of no use to anyone
        if (d.draining?.()) return (yielded = true);
        // Yield only after progress in this delivery, so a redelivery always moves the job on.
        if (d.maxHoldMs !== undefined && computed > 0 && performance.now() - t0 > d.maxHoldMs) return (yielded = true);
        return false;
      },
      onChunk: async (k, region, carry) => {
        if (fence.stopped) return; // the job ended during this model run: nothing of it is stored
        await withSpan(`separate chunk ${k}`, { kind: SpanKind.INTERNAL, attributes: { 'stemflow.job_id': id, 'stemflow.chunk.index': k, 'stemflow.chunk.count': pass.chunks.length, 'stemflow.pass': pi } }, () => work.checkpoint(pi, k, region, carry));
        done++;
        computed++;
        chunkMs += performance.now() - tChunk;
        tChunk = performance.now();
        if (writer && region.length > 0) await writer.push(region.data);
        const etaSec = ((chunkMs / computed) * (total - done)) / 1000 + 2;
        progress = DECODE_SHARE + (SEPARATE_SHARE * done) / total;
        await d.bus.publish(newEvent('job.progress', id, { stage: 'separating', progress, chunk: { index: done - 1, count: total }, etaSec }));
      },
    }, resume).catch(async (err: unknown) => {
      // The writer's encoders and files are given back whatever stopped the pass.
      await writer?.stop();
      throw err;
    });
    if (r === 'stopped') await writer?.stop();
    if (r === 'stopped' && yielded) {
      log.info({ done, total, heldSec: Math.round((performance.now() - t0) / 1000) }, d.draining?.() ? 'stopping: handing the job back to the queue to continue elsewhere' : 'held the job as long as allowed: handing it back to the queue to continue');
      await d.bus.publish(newEvent('job.decoded', id, e.payload));
      return;
    }
    if (r === 'stopped') {
      log.info('canceled between chunks, cleaning up');
      await work.clear();
      return;
    }
  }

  // Held long already: the stems are encoded in a fresh delivery (every chunk is checkpointed, so
  // it goes straight to encoding), with the whole consumer timeout before it instead of what is left.
  if (!writer && d.maxHoldMs !== undefined && computed > 0 && performance.now() - t0 > d.maxHoldMs) {
    log.info({ done, total, heldSec: Math.round((performance.now() - t0) / 1000) }, 'held the job as long as allowed: handing it back to the queue to encode its stems');
    await d.bus.publish(newEvent('job.decoded', id, e.payload));
    return;
  }
  const tSep = performance.now();
  stage = 'encoding';
  progress = DECODE_SHARE + SEPARATE_SHARE;
  await d.bus.publish(newEvent('job.progress', id, { stage, progress, etaSec: writer ? 1 : Math.max(1, spec.frames / spec.sampleRate / 20) }));
  const written = writer ? await writer.end() : await assemble(d, work, plan, spec, isCanceled);
  if (!written) {
    log.info('canceled while encoding, cleaning up');
    await work.clear();
    return;
  }
  const { stems, report } = written;
  const tEnd = performance.now();
  const audioSec = spec.frames / spec.sampleRate;
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
  await d.bus.publish(newEvent('job.completed', id, { stems, model: HTDEMUCS.name, timings, durationSec: audioSec, sampleRate: spec.sampleRate, channels: 2, report }));
  await writeCompletedMarker(d.blobs, id, { stems, timings, report });
  await work.clear();
  // Deleted while its stems were being stored (its decoded audio is gone): what was written after
  // the delete removed the job's objects would stay under a prefix no job owns.
  if (!(await d.blobs.head(e.payload.pcmKey))) {
    log.info('the job was deleted as it completed: removing what was written after the delete');
    await d.blobs.deletePrefix(objectKeys.job(id));
  }
  separationRealtimeFactor.observe({ device: d.engine.device }, timings.realtimeFactor);
  log.info({ ...timings, audioSec }, 'separated');
}

/** Writes the stems from the checkpoints (every pass averaged); undefined if the job was canceled meanwhile. */
async function assemble(d: SeparateDeps, work: WorkStore, plan: Plan, spec: StemsSpec, isCanceled: () => Promise<boolean>) {
  const track = () => averagePasses(plan, plan.passes.map((_, p) => work.regions(p)));
  // Rescale needs each stem's peak before anything is written.
  const gains = spec.clip === 'rescale' ? (await measurePeaks(d, spec, track())).map(rescaleGain) : spec.outs.map(() => 1);
  return writeStems(d, spec, track(), gains, { isCanceled });
}

/** The stem writer of a streaming job, running beside the separation loop. */
function startWriter(d: SeparateDeps, spec: StemsSpec, plan: Plan, work: WorkStore, checkpointed: number, hooks: WriteHooks) {
  const queue = new BlockQueue<Float32Array>();
  // What earlier deliveries checkpointed goes first (their pieces are not stored twice), then what the pass makes.
  const replayed = (async () => {
    if (checkpointed >= 0) for await (const r of work.regions(0, checkpointed)) await queue.push(r.slice());
  })().catch((err: unknown) => queue.fail(err));
  const done = writeStems(d, spec, averagePasses(plan, [queue[Symbol.asyncIterator]()]), spec.outs.map(() => 1), hooks);
  // The writer saw the job canceled: it takes nothing more, and the pass stops at its next chunk.
  let canceled = false;
  done.then(
    (r) => {
      if (r === undefined) {
        canceled = true;
        queue.fail(new StemflowError('STOPPED', 'the job was canceled'));
      }
    },
    (err: unknown) => queue.fail(err),
  );
  return {
    push: async (region: Float32Array) => {
      await replayed;
      if (canceled) return;
      await queue.push(region).catch((err: unknown) => {
        if (!canceled) throw err;
      });
    },
    end: async () => {
      await replayed;
      queue.end();
      return done;
    },
    /** The pass stopped (canceled, or handed back): the writer ends without finishing the stems. */
    stop: async () => {
      queue.fail(new StemflowError('STOPPED', 'the separation stopped'));
      await done.catch(() => {});
    },
  };
}
