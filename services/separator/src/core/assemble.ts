/**
 * Assembly, pure: the passes' checkpointed regions averaged into blocks of the final track
 * (de-normalized), and each output stem mixed from the model's stems (the residual where asked),
 * its gain and clamp applied and measured, as the interleaved stereo an encoder takes.
 */
import { StemflowError, outputStemNames, type AudioFormat, type JobOptions, type OutputStemName } from '@stemflow/contracts';
import { setImmediate as turn } from 'node:timers/promises';
import { addReadBack } from '@stemflow/audio';
import { HTDEMUCS } from '@stemflow/models';
import { CH } from './engine.js';
import { PLANES } from './pass.js';
import type { Plan } from './plan.js';

export type Output = { name: OutputStemName; from: number[] };

/** Which stems to write (the contract's names), and how each is made from the four the model gives. */
export function outputs(opts: JobOptions): Output[] {
  const idx = (n: string) => HTDEMUCS.stems.indexOf(n as (typeof HTDEMUCS.stems)[number]);
  return outputStemNames(opts).map((name) => ({ name, from: name === 'accompaniment' ? [idx('drums'), idx('bass'), idx('other')] : [idx(name)] }));
}

/** Demucs's rescale: a stem whose peak is over full scale is scaled down to just under it. */
export const rescaleGain = (peak: number) => 1 / Math.max(1.01 * peak, 1);

/**
 * Frames per block of the final track: small enough that averaging, mixing, measuring and
 * quantizing one block holds the event loop a millisecond or two, and a turn of the loop comes
 * between blocks (the main thread also serves the job's progress and other jobs).
 */
export const BLOCK_FRAMES = 1 << 14;

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
    const n = Math.min(...bufs.map((b) => b.n - b.at), plan.length - emitted, BLOCK_FRAMES);
    if (cap.length < PLANES * n) cap = new Float32Array(PLANES * n);
    const out = cap.subarray(0, PLANES * n);
    const k = plan.std / P;
    const mean = plan.mean;
    if (P === 1) {
      // One pass (shifts=1, most jobs): de-normalized in one sweep, the same numbers as the sum below.
      const b = bufs[0]!;
      for (let pl = 0; pl < PLANES; pl++) {
        const from = pl * b.n + b.at;
        for (let i = 0, o = pl * n; i < n; i++, o++) out[o] = (0 + b.data[from + i]!) * k + mean;
      }
      b.at += n;
    } else {
      out.fill(0);
      for (let p = 0; p < P; p++) {
        const b = bufs[p]!;
        for (let pl = 0; pl < PLANES; pl++) for (let i = 0; i < n; i++) out[pl * n + i]! += b.data[pl * b.n + b.at + i]!;
        b.at += n;
      }
      for (let i = 0; i < out.length; i++) out[i] = out[i]! * k + mean;
    }
    emitted += n;
    yield { data: out, n };
    await turn();
  }
}

/** dB of an energy ratio, −300 for nothing. */
export const dB = (ratio: number) => (ratio > 0 ? Math.max(-300, 10 * Math.log10(ratio)) : -300);

/**
 * The output stems of each block at the stems' rate: mixed from the model's stems, the residual
 * (mix − the other model stems) in place of `other` or `accompaniment` when asked, then the gain
 * and clamp. Measures as it goes: each output's peak before its gain, and the energy of
 * mix − Σ outputs as a reader of the files gets them back.
 */
export class StemMixer {
  readonly peaks: number[];
  private errSq = 0;
  private mixSq = 0;
  private bufs: Float32Array[];
  /** One output channel of a block, summed in double before its gain. */
  private acc = new Float64Array(0);
  /** Σ outputs of a block as read back, per interleaved sample. */
  private sum = new Float64Array(0);
  private readonly residualAt: number;
  private readonly rest: number[];

  constructor(
    private readonly outs: Output[],
    residual: boolean,
    private readonly format: AudioFormat,
    private readonly clip: JobOptions['clip'],
    private readonly gains: number[],
    /** Only the peaks are wanted (clip=rescale's first read): nothing is rendered or compared. */
    private readonly peaksOnly = false,
  ) {
    this.peaks = outs.map(() => 0);
    this.bufs = outs.map(() => new Float32Array(0));
    this.residualAt = residual ? outs.findIndex((o) => o.name === 'other' || o.name === 'accompaniment') : -1;
    const target = this.residualAt >= 0 ? outs[this.residualAt]!.from : [];
    this.rest = HTDEMUCS.stems.map((_, s) => s).filter((s) => !target.includes(s));
  }

  /** One block: `data` planar [stem][ch][n], `mix` interleaved stereo; returns each output interleaved (reused buffers; untouched when only the peaks are wanted). */
  block(data: Float32Array, n: number, mix: Float32Array): Float32Array[] {
    if (!this.peaksOnly) for (let k = 0; k < this.outs.length; k++) if (this.bufs[k]!.length < CH * n) this.bufs[k] = new Float32Array(CH * n);
    // Every sample of every job passes here (twice with clip=rescale): no branch or call per
    // sample. Each output channel is summed in double, in the order of its stems, as one sample at a
    // time would be.
    if (this.acc.length < n) this.acc = new Float64Array(n);
    const acc = this.acc;
    const clamp = this.clip === 'clamp';
    for (let k = 0; k < this.outs.length; k++) {
      const buf = this.bufs[k]!;
      const g = this.gains[k]!;
      let peak = this.peaks[k]!;
      for (let c = 0; c < CH; c++) {
        if (k === this.residualAt) {
          for (let i = 0; i < n; i++) acc[i] = mix[CH * i + c]!;
          for (const s of this.rest) {
            const at = (s * CH + c) * n;
            for (let i = 0; i < n; i++) acc[i]! -= data[at + i]!;
          }
        } else {
          acc.fill(0, 0, n);
          for (const s of this.outs[k]!.from) {
            const at = (s * CH + c) * n;
            for (let i = 0; i < n; i++) acc[i]! += data[at + i]!;
          }
        }
        if (this.peaksOnly) {
          for (let i = 0; i < n; i++) peak = Math.max(peak, Math.abs(acc[i]!));
          continue;
        }
        for (let i = 0; i < n; i++) {
          const v = acc[i]!;
          const a = Math.abs(v);
          if (a > peak) peak = a;
          buf[CH * i + c] = clamp ? Math.max(-0.99, Math.min(0.99, v * g)) : v * g;
        }
      }
      this.peaks[k] = peak;
    }
    if (this.peaksOnly) return this.bufs;
    // mix − Σ outputs as a reader of the files gets them back (summed over the outputs in order).
    if (this.sum.length < CH * n) this.sum = new Float64Array(CH * n);
    const sum = this.sum;
    sum.fill(0, 0, CH * n);
    for (let k = 0; k < this.outs.length; k++) addReadBack(this.format, this.bufs[k]!, CH * n, sum);
    for (let j = 0; j < CH * n; j++) {
      const m = mix[j]!;
      this.errSq += (m - sum[j]!) ** 2;
      this.mixSq += m * m;
    }
    return this.bufs;
  }

  /** mix − Σ outputs relative to the mix, in dB. */
  residualDb(): number {
    return this.mixSq > 0 ? dB(this.errSq / this.mixSq) : -300;
  }
}
