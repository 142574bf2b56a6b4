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
import { BYTES_PER_FRAME, FORMAT_CONTENT_TYPE, MAX_SHIFT_FRAMES, SAMPLE_RATE, startEncoder } from '@stemflow/audio';
import { newEvent, type EventBus } from '@stemflow/bus';
import { FORMAT_EXT, StemflowError, type EventOf, type JobOptions, type OutputStemName, type StemObject } from '@stemflow/contracts';
import { DECODE_SHARE, type JobStore } from '@stemflow/jobs';
import { HTDEMUCS } from '@stemflow/models';
import { keys, readObject, type BlobStore } from '@stemflow/storage';
import { type Logger, SpanKind, separationRealtimeFactor, withSpan } from '@stemflow/telemetry';
import { CH, PLANES, planChunks, runPass, type Carry, type Chunk, type HtdemucsEngine, type PassView } from '../core/index.js';

export type SeparateDeps = {
  bus: EventBus;
  blobs: BlobStore;
  jobs: JobStore;
  log: Logger;
  engine: HtdemucsEngine;
  /**
   * Longest time one delivery is held unacked: past it, between chunks, the job is handed back to
   * the queue (a fresh job.decoded) and continues from its checkpoints, so no job, however long,
   * runs into the broker's consumer timeout.
   */
  maxHoldMs?: number | undefined;
};
const SEPARATE_SHARE = 0.85; // of the whole job's progress, after decoding

type Plan = { length: number; mean: number; std: number; passes: { view: PassView; chunks: Chunk[] }[] };
const workKey = (id: string, name: string) => `jobs/${id}/work/${name}`;
const chunkKey = (id: string, pass: number, k: number) => workKey(id, `pass-${pass}/chunk-${String(k).padStart(5, '0')}.bin`);

/** Reads planar stereo [start, start+len) of the interleaved f32 PCM, normalized, zeros outside. */
function mixReader(blobs: BlobStore, pcmKey: string, frames: number, mean: number, std: number) {
  return async (start: number, len: number): Promise<Float32Array> => {
    const out = new Float32Array(2 * len);
    const a = Math.max(0, start);
    const b = Math.min(frames, start + len);
    if (b <= a) return out;
    const raw = await readRange(blobs, pcmKey, a * BYTES_PER_FRAME, (b - a) * BYTES_PER_FRAME);
    const f = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const inv = 1 / std;
    for (let i = 0; i < b - a; i++) {
      out[a - start + i] = (f[2 * i]! - mean) * inv;
      out[len + a - start + i] = (f[2 * i + 1]! - mean) * inv;
    }
    return out;
  };
}

async function readRange(blobs: BlobStore, key: string, start: number, bytes: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for await (const c of await blobs.get(key, { start, end: start + bytes - 1 })) {
    (c as Buffer).copy(out, at);
    at += (c as Buffer).length;
  }
  if (at !== bytes) throw new StemflowError('PCM_SHORT', `read ${at} of ${bytes} bytes of ${key}`, { retryable: true });
  return out;
}

/** Mean and (unbiased) std of the mono mix, streaming: Demucs's per-track normalization. */
async function trackStats(blobs: BlobStore, key: string): Promise<{ mean: number; std: number }> {
  let n = 0, sum = 0, sumSq = 0;
  let carry = Buffer.alloc(0);
  for await (const c of await blobs.get(key)) {
    const buf = carry.length ? Buffer.concat([carry, c as Buffer]) : (c as Buffer);
    const whole = buf.length - (buf.length % BYTES_PER_FRAME);
    for (let i = 0; i < whole; i += BYTES_PER_FRAME) {
      const m = (buf.readFloatLE(i) + buf.readFloatLE(i + 4)) / 2;
      sum += m;
      sumSq += m * m;
      n++;
    }
    carry = Buffer.from(buf.subarray(whole));
  }
  const mean = sum / n;
  const variance = n > 1 ? (sumSq - n * mean * mean) / (n - 1) : 0;
  return { mean, std: Math.sqrt(Math.max(variance, 0)) || 1 };
}

/** Deterministic per job, so a resumed job makes the same shifts. */
function seededOffsets(jobId: string, count: number, max: number): number[] {
  let s = parseInt(jobId.replace(/-/g, '').slice(-8), 16) || 1;
  return Array.from({ length: count }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % (max + 1);
  });
}

function makePlan(frames: number, opts: JobOptions, jobId: string, stats: { mean: number; std: number }): Plan {
  const passes: Plan['passes'] = [];
  if (opts.shifts <= 1) {
    passes.push({ view: { viewOffset: 0, viewLength: frames, trackLength: frames }, chunks: planChunks(frames, opts.overlap) });
  } else {
    // apply.py: pad by max_shift, shift by a random offset, keep out[max_shift - offset:].
    const maxShift = MAX_SHIFT_FRAMES;
    for (const off of seededOffsets(jobId, opts.shifts, maxShift)) {
      const viewLength = frames + maxShift - off;
      passes.push({ view: { viewOffset: off - maxShift, viewLength, trackLength: frames }, chunks: planChunks(viewLength, opts.overlap) });
    }
  }
  return { length: frames, ...stats, passes };
}

function encodeCheckpoint(k: number, region: { start: number; length: number; data: Float32Array }, carry: Carry): Buffer {
  const head = Buffer.from(JSON.stringify({ k, start: region.start, length: region.length, base: carry.base, remLen: carry.wsum.length }));
  const pad = (4 - ((head.length + 4) % 4)) % 4;
  const h = Buffer.alloc(4 + head.length + pad, 0x20);
  h.writeUInt32LE(head.length + pad, 0);
  head.copy(h, 4);
  const f = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return Buffer.concat([h, f(region.data), f(carry.rem), f(carry.wsum)]);
}

function decodeCheckpoint(buf: Buffer) {
  const hl = buf.readUInt32LE(0);
  const head = JSON.parse(buf.subarray(4, 4 + hl).toString()) as { k: number; start: number; length: number; base: number; remLen: number };
  // A view, not a copy (the header is padded to 4 bytes); copied only if the buffer is unaligned.
  const at = buf.byteOffset + 4 + hl;
  const body = at % 4 === 0 ? new Float32Array(buf.buffer, at, (buf.length - 4 - hl) / 4) : new Float32Array(buf.buffer.slice(at, buf.byteOffset + buf.length));
  const d = PLANES * head.length;
  const r = PLANES * head.remLen;
  return { ...head, data: body.subarray(0, d), carry: { base: head.base, rem: body.subarray(d, d + r), wsum: body.subarray(d + r, d + r + head.remLen) } };
}

/** Which stems to write, and how each is made from the four the model gives. */
function outputs(opts: JobOptions): { name: OutputStemName; from: number[] }[] {
  const idx = (n: string) => HTDEMUCS.stems.indexOf(n as (typeof HTDEMUCS.stems)[number]);
  if (opts.two_stems === 'vocals') return [{ name: 'vocals', from: [idx('vocals')] }, { name: 'accompaniment', from: [idx('drums'), idx('bass'), idx('other')] }];
  return opts.stems.map((s) => ({ name: s, from: [idx(s)] }));
}

export async function separateJob(d: SeparateDeps, e: EventOf<'job.decoded'>): Promise<void> {
  const id = e.jobId;
  const log = d.log.child({ jobId: id });
  const job = await d.jobs.get(id);
  if (!job) {
    // The gateway records every job before announcing it: an unknown (or deleted) job is not ours.
    log.warn('no such job in the read model (deleted, or not from this deployment): dropping job.decoded');
    return;
  }
  if (job.status === 'completed' || job.status === 'failed' || job.status === 'canceled') {
    log.info({ status: job.status }, 'job already ended, not separating');
    return;
  }
  const opts = job.options;
  const t0 = performance.now();
  // The engine counts model time over its life: this job's share is the difference.
  const runMs0 = d.engine.runMs;

  // The plan is stored once, so a resumed job continues with the same chunks and shifts.
  let plan: Plan;
  if (await d.blobs.head(workKey(id, 'plan.json'))) {
    plan = JSON.parse((await readObject(d.blobs, workKey(id, 'plan.json'))).toString()) as Plan;
  } else {
    plan = makePlan(e.payload.frames, opts, id, await trackStats(d.blobs, e.payload.pcmKey));
    await d.blobs.put(workKey(id, 'plan.json'), Buffer.from(JSON.stringify(plan)));
  }
  const read = mixReader(d.blobs, e.payload.pcmKey, plan.length, plan.mean, plan.std);
  const total = plan.passes.reduce((n, p) => n + p.chunks.length, 0);
  let done = 0;
  let chunkMs = 0;
  let computed = 0;
  let yielded = false;

  const isCanceled = async () => {
    const j = await d.jobs.get(id);
    return !j || j.status === 'canceled';
  };

  for (const [pi, pass] of plan.passes.entries()) {
    // Resume after the last checkpointed chunk of this pass.
    const have = (await d.blobs.list(workKey(id, `pass-${pi}/`))).map((b) => b.key).sort();
    let resume: { after: number; carry: Carry } | undefined;
    if (have.length) {
      const last = decodeCheckpoint(await readObject(d.blobs, have[have.length - 1]!));
      resume = { after: last.k, carry: last.carry };
      log.info({ pass: pi, resumeAfter: last.k }, 'resuming from checkpoint');
    }
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
        await withSpan(`separate chunk ${k}`, { kind: SpanKind.INTERNAL, attributes: { 'stemflow.job_id': id, 'stemflow.chunk.index': k, 'stemflow.chunk.count': pass.chunks.length, 'stemflow.pass': pi } }, async () => {
          await d.blobs.put(chunkKey(id, pi, k), encodeCheckpoint(k, region, carry));
        });
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
      await d.blobs.deletePrefix(workKey(id, ''));
      return;
    }
  }

  const tSep = performance.now();
  await d.bus.publish(newEvent('job.progress', id, { stage: 'encoding', progress: DECODE_SHARE + SEPARATE_SHARE, etaSec: Math.max(1, plan.length / SAMPLE_RATE / 20) }));
  const stems = await assemble(d, id, plan, opts, isCanceled);
  if (!stems) {
    log.info('canceled while encoding, cleaning up');
    await d.blobs.deletePrefix(workKey(id, ''));
    return;
  }
  const timings = { separateSec: (tSep - t0) / 1000, encodeSec: (performance.now() - tSep) / 1000, modelRunSec: (d.engine.runMs - runMs0) / 1000, chunks: total };
  await d.bus.publish(newEvent('job.completed', id, { stems, model: HTDEMUCS.name, timings }));
  await d.blobs.deletePrefix(workKey(id, ''));
  const rtf = (tSep - t0) / 1000 / (plan.length / SAMPLE_RATE);
  separationRealtimeFactor.observe({ device: d.engine.device }, rtf);
  log.info({ ...timings, rtf }, 'separated');
}

/** Reads the checkpointed regions of every pass in order, as [plane][n] blocks of the track. */
async function* regions(d: SeparateDeps, id: string, pass: number): AsyncGenerator<Float32Array> {
  const list = (await d.blobs.list(workKey(id, `pass-${pass}/`))).sort((a, b) => a.key.localeCompare(b.key));
  // One read buffer per pass, reused: a block is consumed before the next one is read, and a
  // fresh 10 MB buffer per checkpoint left hundreds of MB for the GC to find on long tracks.
  let buf = Buffer.alloc(0);
  for (const { key, size } of list) {
    if (buf.length < size) buf = Buffer.alloc(size);
    let at = 0;
    for await (const c of await d.blobs.get(key)) {
      (c as Buffer).copy(buf, at);
      at += (c as Buffer).length;
    }
    const c = decodeCheckpoint(buf.subarray(0, at));
    if (c.length > 0) yield c.data;
  }
}

/** Averages the passes into blocks of the final track: [plane][n], de-normalized. */
async function* track(d: SeparateDeps, id: string, plan: Plan): AsyncGenerator<{ data: Float32Array; n: number }> {
  const its = plan.passes.map((_, p) => regions(d, id, p));
  const bufs: { data: Float32Array; n: number; at: number }[] = [];
  for (const it of its) {
    const r = await it.next();
    bufs.push(r.done ? { data: new Float32Array(0), n: 0, at: 0 } : { data: r.value, n: r.value.length / PLANES, at: 0 });
  }
  const P = plan.passes.length;
  // One output buffer, reused: each block is consumed before the next is asked for.
  let cap = new Float32Array(0);
  for (let emitted = 0; emitted < plan.length; ) {
    // Refill any pass whose block is used up.
    for (let p = 0; p < P; p++) {
      while (bufs[p]!.at >= bufs[p]!.n) {
        const r = await its[p]!.next();
        if (r.done) throw new StemflowError('CHECKPOINT_MISSING', `separation output of pass ${p} ends early`, { retryable: true });
        bufs[p] = { data: r.value, n: r.value.length / PLANES, at: 0 };
      }
    }
    const n = Math.min(...bufs.map((b) => b.n - b.at), plan.length - emitted);
    if (cap.length < PLANES * n) cap = new Float32Array(PLANES * n);
    const out = cap.subarray(0, PLANES * n);
    out.fill(0);
    for (let p = 0; p < P; p++) {
      const b = bufs[p]!;
      for (let pl = 0; pl < PLANES; pl++) for (let i = 0; i < n; i++) out[pl * n + i]! += b.data[pl * b.n + b.at + i]!;
      b.at += n;
    }
    const k = plan.std / P;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! * k + plan.mean;
    emitted += n;
    yield { data: out, n };
  }
}

/** Encodes the stems from the checkpoints; undefined if the job was canceled meanwhile. */
async function assemble(d: SeparateDeps, id: string, plan: Plan, opts: JobOptions, isCanceled: () => Promise<boolean>): Promise<StemObject[] | undefined> {
  const outs = outputs(opts);
  const mixOf = (o: { from: number[] }, data: Float32Array, n: number, c: number, i: number) => {
    let v = 0;
    for (const s of o.from) v += data[(s * CH + c) * n + i]!;
    return v;
  };
  // Peaks first (rescale needs them before anything is written).
  const peak = outs.map(() => 0);
  if (opts.clip === 'rescale') {
    for await (const { data, n } of track(d, id, plan)) {
      outs.forEach((o, k) => {
        for (let c = 0; c < CH; c++) for (let i = 0; i < n; i++) peak[k] = Math.max(peak[k]!, Math.abs(mixOf(o, data, n, c, i)));
      });
    }
  }
  const gain = outs.map((_, k) => (opts.clip === 'rescale' ? 1 / Math.max(1.01 * peak[k]!, 1) : 1));
  const dir = await mkdtemp(join(tmpdir(), `stemflow-${id}-`));
  const ext = FORMAT_EXT[opts.format];
  const encoders = outs.map((o) => ({ o, file: join(dir, `${o.name}.${ext}`), enc: startEncoder(opts.format, SAMPLE_RATE, join(dir, `${o.name}.${ext}`), o.name) }));
  try {
    // One scratch buffer per encoder, reused: each write is fully taken by the pipe before the
    // next block (fresh buffers per block piled up ~850 MB of garbage on a 10-minute track).
    const scratch = encoders.map(() => new Float32Array(0));
    let lastCancelCheck = performance.now();
    for await (const { data, n } of track(d, id, plan)) {
      if (performance.now() - lastCancelCheck > 1000) {
        lastCancelCheck = performance.now();
        if (await isCanceled()) return undefined;
      }
      await Promise.all(
        encoders.map(({ o, enc }, k) => {
          if (scratch[k]!.length < 2 * n) scratch[k] = new Float32Array(2 * n);
          const buf = scratch[k]!;
          const g = gain[k]!;
          for (let i = 0; i < n; i++) {
            for (let c = 0; c < CH; c++) {
              let v = mixOf(o, data, n, c, i) * g;
              if (opts.clip === 'clamp') v = Math.max(-0.99, Math.min(0.99, v));
              buf[2 * i + c] = v;
            }
          }
          return enc.write(Buffer.from(buf.buffer, 0, 8 * n));
        }),
      );
    }
    await Promise.all(encoders.map((x) => x.enc.finish()));
    const stems: StemObject[] = [];
    for (const { o, file } of encoders) {
      const key = keys.stem(id, o.name, ext);
      const bytes = (await stat(file)).size;
      await d.blobs.put(key, createReadStream(file), { size: bytes, contentType: FORMAT_CONTENT_TYPE[opts.format] });
      stems.push({ name: o.name, format: opts.format, key, bytes });
    }
    return stems;
  } finally {
    // Every path (done, canceled, deleted under it, a store or encoder failure) ends every encoder.
    for (const { enc } of encoders) enc.kill();
    await rm(dir, { recursive: true, force: true });
  }
}
