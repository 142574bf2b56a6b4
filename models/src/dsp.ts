/**
 * The host-side signal processing htdemucs needs around its ONNX graph, as Demucs defines it
 * (htdemucs.py `_spec`/`_ispec`, apply.py): reflect padding as torch does it, a normalized STFT
 * with a periodic Hann window (n_fft and hop from the model's manifest: 4096, 1024) keeping bins 0..2047 and frames 2..2+le,
 * and its inverse. This is the hot path: the FFTs are PFFFT's real transforms (WebAssembly, SIMD),
 * on buffers allocated once per thread in its module's memory.
 */
import PFFFT, { type PffftModule } from '@echogarden/pffft-wasm/simd';
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

/** This thread's Stft, on its PFFFT module (Stft.shared). */
let shared: Promise<Stft> | undefined;
const PFFFT_REAL = 0;
const FORWARD = 0;
const BACKWARD = 1;
/** The window with the STFT's normalization, and with the inverse's (PFFFT does not divide by N). */
const analysis = new Float64Array(N_FFT);
const synthesis = new Float64Array(N_FFT);
for (let n = 0; n < N_FFT; n++) {
  analysis[n] = hann[n]! * NORM;
  synthesis[n] = (hann[n]! * Math.sqrt(N_FFT)) / WINDOW_ENERGY / N_FFT;
}

/**
 * Frames transformed together. The spectrogram is stored bin-major ([bin][frame]), so a frame's
 * 2,048 bins lie 336 floats apart: gathered or scattered one frame at a time, every bin is a cache
 * miss (that, not the FFT, was most of the time). A block of frames reads each bin's row in one
 * cache line.
 */
const BLOCK = 16;

export class Stft {
  /** In the module's memory: BLOCK frames, their spectra, a second set of outputs, PFFFT's scratch. */
  private readonly frames: number;
  private readonly spectra: number;
  private readonly outs: number;
  private readonly work: number;
  private readonly setup: number;

  private constructor(private readonly m: PffftModule) {
    this.setup = m._pffft_new_setup(N_FFT, PFFFT_REAL);
    this.frames = m._pffft_aligned_malloc(BLOCK * N_FFT * 4);
    this.spectra = m._pffft_aligned_malloc(BLOCK * N_FFT * 4);
    this.outs = m._pffft_aligned_malloc(BLOCK * N_FFT * 4);
    this.work = m._pffft_aligned_malloc(N_FFT * 4);
  }

  /**
   * This thread's transforms. One is enough and is never given back: its buffers are scratch that
   * no call leaves anything in (a caller that slices its work between turns of the event loop
   * keeps its own accumulators), so every job's engine shares it — one per job would grow the
   * module's memory, which never shrinks, by 0.8 MiB a job.
   */
  static shared(): Promise<Stft> {
    return (shared ??= PFFFT().then((m) => new Stft(m)));
  }

  /** Bytes of this thread's PFFFT module memory (it grows, never shrinks). */
  static async memoryBytes(): Promise<number> {
    return (await Stft.shared()).m.HEAPF32.byteLength;
  }

  /**
   * Demucs `_spec` of one channel of a segment (length `len` ≤ SEGMENT, in `x` from `offset`
   * with `stride`), written as complex-as-channels into `dest` ([.., 2048, 336] planes `re`, `im`).
   * Frames [from, to) only, when given: a caller can do it in slices (each frame is independent).
   */
  spec(x: Float32Array, offset: number, stride: number, len: number, dest: Float32Array, rePlane: number, imPlane: number, from = 0, to = Infinity): void {
    const le = Math.ceil(len / HOP);
    const end = Math.min(le, to);
    const reBase = rePlane * BINS * le;
    const imBase = imPlane * BINS * le;
    for (let t0 = from; t0 < end; t0 += BLOCK) {
      const nb = Math.min(BLOCK, end - t0);
      const heap = this.m.HEAPF32;
      for (let j = 0; j < nb; j++) {
        const frame = (this.frames >> 2) + j * N_FFT;
        // Frame t+2 of torch.stft(center) of the padded signal starts at t*HOP of that signal,
        // i.e. at t*HOP - SPEC_PAD of x: the centre padding is never reached.
        const start = (t0 + j) * HOP - SPEC_PAD;
        if (start >= 0 && start + N_FFT <= len) {
          for (let n = 0; n < N_FFT; n++) heap[frame + n] = x[offset + (start + n) * stride]! * analysis[n]!;
        } else {
          for (let n = 0; n < N_FFT; n++) {
            // Right of x, Demucs pads to le*HOP + pad by reflection too.
            heap[frame + n] = x[offset + reflectIndex(start + n, len) * stride]! * analysis[n]!;
          }
        }
        this.m._pffft_transform_ordered(this.setup, this.frames + j * N_FFT * 4, this.spectra + j * N_FFT * 4, this.work, FORWARD);
      }
      // Ordered real spectra: [re 0, re N/2, re 1, im 1, re 2, im 2, ...]; written a bin's row at a time.
      const out = this.spectra >> 2;
      for (let j = 0; j < nb; j++) {
        dest[reBase + t0 + j] = heap[out + j * N_FFT]!;
        dest[imBase + t0 + j] = 0;
      }
      for (let f = 1; f < BINS; f++) {
        const re = reBase + f * le + t0, im = imBase + f * le + t0;
        for (let j = 0, o = out + 2 * f; j < nb; j++, o += N_FFT) {
          dest[re + j] = heap[o]!;
          dest[im + j] = heap[o + 1]!;
        }
      }
    }
  }

  /**
   * Demucs `_ispec` of two channels: complex-as-channels planes in `z` ([.., 2048, 336]) → `len`
   * samples added into outA/outB. Frames [from, to) only, when given: each frame is added in on
   * its own (overlap-add), so a caller can do it in slices. The sums are float32, like what they
   * are added to (the model's time branch): float64 accumulators, cleared and then added to it,
   * moved twice the bytes through memory, and this loop is bound by memory, not arithmetic.
   */
  ispec2(z: Float32Array, a: { re: number; im: number }, b: { re: number; im: number }, len: number, outA: Float32Array, outB: Float32Array, from = 0, to = Infinity): void {
    const le = Math.ceil(len / HOP);
    const end = Math.min(le, to);
    for (let t0 = from; t0 < end; t0 += BLOCK) {
      const nb = Math.min(BLOCK, end - t0);
      this.inverse(z, a.re * BINS * le, a.im * BINS * le, le, t0, nb, this.frames);
      this.inverse(z, b.re * BINS * le, b.im * BINS * le, le, t0, nb, this.outs);
      const heap = this.m.HEAPF32;
      for (let j = 0; j < nb; j++) {
        const ta = (this.frames >> 2) + j * N_FFT, tb = (this.outs >> 2) + j * N_FFT;
        // Frame t+2 covers [t*HOP, t*HOP + N) of the istft output, which is cropped at SPEC_PAD.
        const base = (t0 + j) * HOP - SPEC_PAD;
        const n0 = Math.max(0, -base);
        const n1 = Math.min(N_FFT, len - base);
        for (let n = n0; n < n1; n++) {
          const w = synthesis[n]!;
          outA[base + n]! += heap[ta + n]! * w;
          outB[base + n]! += heap[tb + n]! * w;
        }
      }
    }
  }

  /** Frames [t0, t0+nb) of one channel (planes at reBase, imBase) through the real inverse FFT into `to`. */
  private inverse(z: Float32Array, reBase: number, imBase: number, le: number, t0: number, nb: number, to: number): void {
    const heap = this.m.HEAPF32;
    const s = this.spectra >> 2;
    // Bins 0..2047 given, the Nyquist bin is zero. As torch's irfft does, the imaginary part at DC
    // is ignored (the model's output need not be a consistent spectrogram).
    for (let j = 0; j < nb; j++) {
      heap[s + j * N_FFT] = z[reBase + t0 + j]!;
      heap[s + j * N_FFT + 1] = 0;
    }
    // Eight bins a row of frames: each frame's spectrum is written 16 floats at a time instead of
    // 2 (2.3× faster here than a bin at a time: 10 ms a segment's eight channels, not 23).
    let f = 1;
    for (; f + 7 < BINS; f += 8) {
      const re = reBase + f * le + t0, im = imBase + f * le + t0;
      for (let j = 0, o = s + 2 * f; j < nb; j++, o += N_FFT) {
        let r = re + j, i = im + j;
        heap[o] = z[r]!;
        heap[o + 1] = z[i]!;
        heap[o + 2] = z[(r += le)]!;
        heap[o + 3] = z[(i += le)]!;
        heap[o + 4] = z[(r += le)]!;
        heap[o + 5] = z[(i += le)]!;
        heap[o + 6] = z[(r += le)]!;
        heap[o + 7] = z[(i += le)]!;
        heap[o + 8] = z[(r += le)]!;
        heap[o + 9] = z[(i += le)]!;
        heap[o + 10] = z[(r += le)]!;
        heap[o + 11] = z[(i += le)]!;
        heap[o + 12] = z[(r += le)]!;
        heap[o + 13] = z[(i += le)]!;
        heap[o + 14] = z[(r += le)]!;
        heap[o + 15] = z[(i += le)]!;
      }
    }
    for (; f < BINS; f++) {
      const re = reBase + f * le + t0, im = imBase + f * le + t0;
      for (let j = 0, o = s + 2 * f; j < nb; j++, o += N_FFT) {
        heap[o] = z[re + j]!;
        heap[o + 1] = z[im + j]!;
      }
    }
    for (let j = 0; j < nb; j++) this.m._pffft_transform_ordered(this.setup, this.spectra + j * N_FFT * 4, to + j * N_FFT * 4, this.work, BACKWARD);
  }
}
