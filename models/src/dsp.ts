/**
 * The host-side signal processing htdemucs needs around its ONNX graph, as Demucs defines it
 * (htdemucs.py `_spec`/`_ispec`, apply.py): reflect padding as torch does it, a normalized STFT
 * with a periodic Hann window (n_fft and hop from the model's manifest: 4096, 1024) keeping bins 0..2047 and frames 2..2+le,
 * and its inverse. This is the hot path: scratch buffers are reused and the FFT is fft.js's
 * radix-4 real transform; two real inverse transforms share one complex one.
 */
import FFT from 'fft.js';
import { HTDEMUCS } from './manifest.js';

export const N_FFT = HTDEMUCS.stft.nFft;
export const HOP = HTDEMUCS.stft.hop;
/** Samples per model run: htdemucs's training segment, 7.8 s at 44.1 kHz. */
export const SEGMENT = HTDEMUCS.segment;
export const BINS = N_FFT / 2; // the Nyquist bin is dropped
export const FRAMES = Math.ceil(SEGMENT / HOP); // 336
/** Demucs pads the segment by hop/2*3 on the left before its STFT. */
export const SPEC_PAD = (HOP / 2) * 3;
const NORM = 1 / Math.sqrt(N_FFT);
/** Σ w² of four periodic Hann windows at hop n/4: constant wherever four frames overlap. */
const WINDOW_ENERGY = 1.5;

const hann = new Float64Array(N_FFT);
for (let n = 0; n < N_FFT; n++) hann[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);

/** torch's reflect padding: index i of x extended past its ends by mirroring (edge excluded). */
export function reflectIndex(i: number, len: number): number {
  if (len === 1) return 0;
  const period = 2 * (len - 1);
  let k = ((i % period) + period) % period;
  if (k >= len) k = period - k;
  return k;
}

export class Stft {
  private readonly fft = new FFT(N_FFT);
  private readonly frame = new Float64Array(N_FFT);
  private readonly spectrum = new Float64Array(2 * N_FFT);
  private readonly spectrum2 = new Float64Array(2 * N_FFT);
  private readonly time = new Float64Array(2 * N_FFT);

  /**
   * Demucs `_spec` of one channel of a segment (length `len` ≤ SEGMENT, in `x` from `offset`
   * with `stride`), written as complex-as-channels into `dest` ([.., 2048, 336] planes `re`, `im`).
   * Frames [from, to) only, when given: a caller can do it in slices (each frame is independent).
   */
  spec(x: Float32Array, offset: number, stride: number, len: number, dest: Float32Array, rePlane: number, imPlane: number, from = 0, to = Infinity): void {
    const le = Math.ceil(len / HOP);
    const frame = this.frame;
    const out = this.spectrum;
    const reBase = rePlane * BINS * le;
    const imBase = imPlane * BINS * le;
    for (let t = from; t < Math.min(le, to); t++) {
      // Frame t+2 of torch.stft(center) of the padded signal starts at t*HOP of that signal,
      // i.e. at t*HOP - SPEC_PAD of x: the centre padding is never reached.
      const start = t * HOP - SPEC_PAD;
      if (start >= 0 && start + N_FFT <= len) {
        for (let n = 0; n < N_FFT; n++) frame[n] = x[offset + (start + n) * stride]! * hann[n]! * NORM;
      } else {
        for (let n = 0; n < N_FFT; n++) {
          // Right of x, Demucs pads to le*HOP + pad by reflection too.
          frame[n] = x[offset + reflectIndex(start + n, len) * stride]! * hann[n]! * NORM;
        }
      }
      this.fft.realTransform(out, frame);
      for (let f = 0; f < BINS; f++) {
        dest[reBase + f * le + t] = out[2 * f]!;
        dest[imBase + f * le + t] = out[2 * f + 1]!;
      }
    }
  }

  /**
   * Demucs `_ispec` of two channels at once (two real signals share one complex inverse FFT):
   * complex-as-channels planes in `z` ([.., 2048, 336]) → `len` samples added into outA/outB.
   * Frames [from, to) only, when given: each frame is added in on its own (overlap-add), so a
   * caller can do it in slices.
   */
  ispec2(z: Float32Array, a: { re: number; im: number }, b: { re: number; im: number }, len: number, outA: Float64Array, outB: Float64Array, from = 0, to = Infinity): void {
    const le = Math.ceil(len / HOP);
    const spec = this.spectrum2;
    const time = this.time;
    const aRe = a.re * BINS * le, aIm = a.im * BINS * le, bRe = b.re * BINS * le, bIm = b.im * BINS * le;
    const scale = Math.sqrt(N_FFT) / WINDOW_ENERGY;
    for (let t = from; t < Math.min(le, to); t++) {
      // Z = A + iB, with A and B Hermitian; bins 0..2047 given, the Nyquist bin is zero. As
      // torch's irfft does, the imaginary part at DC is ignored (the model's output need not be a
      // consistent spectrogram; packing it would leak one channel into the other).
      spec[0] = z[aRe + t]!;
      spec[1] = z[bRe + t]!;
      for (let f = 1; f < BINS; f++) {
        const ar = z[aRe + f * le + t]!, ai = z[aIm + f * le + t]!;
        const br = z[bRe + f * le + t]!, bi = z[bIm + f * le + t]!;
        spec[2 * f] = ar - bi;
        spec[2 * f + 1] = ai + br;
        // conj(A) + i conj(B) at bin N-f
        spec[2 * (N_FFT - f)] = ar + bi;
        spec[2 * (N_FFT - f) + 1] = -ai + br;
      }
      spec[2 * BINS] = 0;
      spec[2 * BINS + 1] = 0;
      this.fft.inverseTransform(time, spec);
      // Frame t+2 covers [t*HOP, t*HOP + N) of the istft output, which is cropped at SPEC_PAD.
      const base = t * HOP - SPEC_PAD;
      const n0 = Math.max(0, -base);
      const n1 = Math.min(N_FFT, len - base);
      for (let n = n0; n < n1; n++) {
        const w = hann[n]! * scale;
        outA[base + n]! += time[2 * n]! * w;
        outB[base + n]! += time[2 * n + 1]! * w;
      }
    }
  }
}
