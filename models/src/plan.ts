/**
 * Where the model runs over a track, and what a job costs in model runs: one rule, used by the
 * separator to plan and by the gateway and decoder to bound a job before any work is spent on it.
 */
import { SEGMENT } from './dsp.js';
import { HTDEMUCS } from './manifest.js';

export type Chunk = { index: number; offset: number; length: number };

/** With shifts, each pass reads the track padded by up to this many frames (apply.py's max_shift). */
export const MAX_SHIFT_FRAMES = Math.floor(0.5 * HTDEMUCS.sampleRate);

const strideOf = (overlap: number, segment: number) => Math.floor((1 - overlap) * segment);

/**
 * Where the model runs. `demucs`: apply.py's plan (offsets every stride = (1-overlap)·segment,
 * the last chunk short and zero-padded). `even`: as few full segments as keep at least the
 * requested overlap, spread evenly, so no run is spent on padding (30 s: 5 runs instead of 6).
 */
export function planChunks(length: number, overlap: number, mode: 'even' | 'demucs' = 'even', segment = SEGMENT): Chunk[] {
  const stride = strideOf(overlap, segment);
  if (mode === 'demucs' || length <= segment) {
    const out: Chunk[] = [];
    for (let offset = 0, i = 0; offset < length; offset += stride, i++) out.push({ index: i, offset, length: Math.min(segment, length - offset) });
    return out;
  }
  const n = Math.ceil((length - segment) / stride) + 1;
  return Array.from({ length: n }, (_, i) => ({ index: i, offset: Math.round((i * (length - segment)) / (n - 1)), length: segment }));
}

export type CostOptions = { shifts: number; overlap: number };

/** How many model runs a track of `frames` costs with these options (an upper bound with shifts). */
export function modelRuns(frames: number, o: CostOptions): number {
  const viewLength = o.shifts > 1 ? frames + MAX_SHIFT_FRAMES : frames;
  const perPass = viewLength <= SEGMENT ? Math.max(1, Math.ceil(viewLength / strideOf(o.overlap, SEGMENT))) : Math.ceil((viewLength - SEGMENT) / strideOf(o.overlap, SEGMENT)) + 1;
  return perPass * Math.max(1, o.shifts);
}

/** The longest track (frames) that fits in `maxRuns` model runs with these options; 0 if none does. */
export function maxFramesForRuns(maxRuns: number, o: CostOptions): number {
  const perPass = Math.floor(maxRuns / Math.max(1, o.shifts));
  if (perPass < 1) return 0;
  const pad = o.shifts > 1 ? MAX_SHIFT_FRAMES : 0;
  return Math.max(0, SEGMENT + (perPass - 1) * strideOf(o.overlap, SEGMENT) - pad);
}

/**
 * Mean and (unbiased) std of the mono mix, fed interleaved stereo f32 bytes in any pieces:
 * Demucs's per-track normalization. The decoder (for a preview window) and the separator (for a
 * whole track) compute it with this one code, so both get the same numbers to the last bit.
 */
export class MonoStats {
  private n = 0;
  private sum = 0;
  private sumSq = 0;
  private carry = Buffer.alloc(0);

  add(chunk: Buffer): void {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = buf.length - (buf.length % 8);
    for (let i = 0; i < whole; i += 8) {
      const m = (buf.readFloatLE(i) + buf.readFloatLE(i + 4)) / 2;
      this.sum += m;
      this.sumSq += m * m;
      this.n++;
    }
    this.carry = Buffer.from(buf.subarray(whole));
  }

  result(): { mean: number; std: number } {
    const n = this.n;
    const mean = n ? this.sum / n : 0;
    const variance = n > 1 ? (this.sumSq - n * mean * mean) / (n - 1) : 0;
    return { mean, std: Math.sqrt(Math.max(variance, 0)) || 1 };
  }
}
