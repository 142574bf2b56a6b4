/**
 * Assembly, pure: the passes' checkpointed regions averaged into blocks of the final track
 * (de-normalized), each output stem mixed from the model's stems, peaks and the gain that
 * `clip=rescale` applies, and a block rendered as the interleaved stereo an encoder takes.
 */
import { StemflowError, type JobOptions, type OutputStemName } from '@stemflow/contracts';
import { HTDEMUCS } from '@stemflow/models';
import { CH } from './engine.js';
import { PLANES } from './pass.js';
import type { Plan } from './plan.js';

export type Output = { name: OutputStemName; from: number[] };

/** Which stems to write, and how each is made from the four the model gives. */
export function outputs(opts: JobOptions): Output[] {
  const idx = (n: string) => HTDEMUCS.stems.indexOf(n as (typeof HTDEMUCS.stems)[number]);
  if (opts.two_stems === 'vocals') return [{ name: 'vocals', from: [idx('vocals')] }, { name: 'accompaniment', from: [idx('drums'), idx('bass'), idx('other')] }];
  return opts.stems.map((s) => ({ name: s, from: [idx(s)] }));
}

/** Sample i of channel c of an output stem, from a block of the model's stems ([stem][ch][n]). */
export function mixOf(o: Output, data: Float32Array, n: number, c: number, i: number): number {
  let v = 0;
  for (const s of o.from) v += data[(s * CH + c) * n + i]!;
  return v;
}

/** Updates each output's peak (absolute) with one block. */
export function updatePeaks(outs: Output[], peaks: number[], data: Float32Array, n: number): void {
  outs.forEach((o, k) => {
    for (let c = 0; c < CH; c++) for (let i = 0; i < n; i++) peaks[k] = Math.max(peaks[k]!, Math.abs(mixOf(o, data, n, c, i)));
  });
}

/** Demucs's rescale: a stem whose peak is over full scale is scaled down to just under it. */
export const rescaleGain = (peak: number) => 1 / Math.max(1.01 * peak, 1);

/** One output stem of a block as interleaved stereo float32 in `out` (grown as needed; returned). */
export function renderBlock(o: Output, data: Float32Array, n: number, gain: number, clip: JobOptions['clip'], out: Float32Array): Float32Array {
  const buf = out.length >= 2 * n ? out : new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < CH; c++) {
      let v = mixOf(o, data, n, c, i) * gain;
      if (clip === 'clamp') v = Math.max(-0.99, Math.min(0.99, v));
      buf[2 * i + c] = v;
    }
  }
  return buf;
}

/** Averages the passes into blocks of the final track: [plane][n], de-normalized. */
export async function* averagePasses(plan: Plan, sources: AsyncIterator<Float32Array>[]): AsyncGenerator<{ data: Float32Array; n: number }> {
  const its = sources;
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
