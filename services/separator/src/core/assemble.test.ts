import { JobOptions } from '@stemflow/contracts';
import { CH } from './engine.js';
import { describe, expect, it } from 'vitest';
import { addReadBack } from '@stemflow/audio';
import { StemMixer, outputs, type Output } from './assemble.js';
import { makePlan, windowPlan } from './plan.js';

/** Sample i of channel c of an output stem, from a block of the model's stems ([stem][ch][n]), one at a time. */
function mixOf(o: Output, data: Float32Array, n: number, c: number, i: number): number {
  let v = 0;
  for (const s of o.from) v += data[(s * CH + c) * n + i]!;
  return v;
}

const rand = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;

describe('the stem mixer', () => {
  const n = 4096;
  const r = rand(7);
  const data = Float32Array.from({ length: 8 * n }, () => 0.3 * r()); // [stem][ch][n]
  const mix = Float32Array.from({ length: 2 * n }, () => 0.8 * r()); // interleaved

  it('with the residual, the stems add up to the mix (other takes what the model left out)', () => {
    const m = new StemMixer(outputs(JobOptions.parse({ residual: true })), true, 'f32', 'rescale', [1, 1, 1, 1]);
    const outs = m.block(data, n, mix).map((b) => b.slice(0, 2 * n));
    for (let j = 0; j < 2 * n; j += 97) expect(outs.reduce((s, o) => s + o[j]!, 0)).toBeCloseTo(mix[j]!, 5);
    expect(m.residualDb()).toBeLessThan(-120);
    // other is the mix minus drums, bass and vocals, sample by sample.
    expect(outs[2]![0]).toBeCloseTo(mix[0]! - data[0]! - data[2 * n]! - data[6 * n]!, 6);
  });

  it('without it, the report is what the model left out; peaks are before the gain; clamp limits at 0.99', () => {
    const m = new StemMixer(outputs(JobOptions.parse({})), false, 'wav16', 'clamp', [0.5, 1, 1, 1]);
    const outs = m.block(data.map((x) => x * 10), n, mix);
    expect(m.peaks[0]).toBeGreaterThan(2); // 10× the data, before the 0.5 gain
    expect(Math.max(...outs[1]!.slice(0, 2 * n).map(Math.abs))).toBe(Math.fround(0.99));
    let err = 0, ref = 0;
    const sum = new Float64Array(2 * n);
    for (const o of outs) addReadBack('wav16', o, 2 * n, sum);
    for (let j = 0; j < 2 * n; j++) {
      err += (mix[j]! - sum[j]!) ** 2;
      ref += mix[j]! ** 2;
    }
    expect(m.residualDb()).toBeCloseTo(10 * Math.log10(err / ref), 6);
  });

  it('gives, bit for bit, what mixing one sample at a time gives (every kind of output, clamp or not)', () => {
    const loud = data.map((x) => x * 4); // past full scale: the clamp and the peaks matter
    for (const [opts, format, clip] of [[{ residual: true }, 'wav16', 'clamp'], [{}, 'f32', 'rescale'], [{ two_stems: 'vocals', residual: true }, 'wav24', 'clamp'], [{ two_stems: 'vocals' }, 'flac', 'rescale']] as const) {
      const outs = outputs(JobOptions.parse(opts));
      const residual = 'residual' in opts;
      const gains = outs.map((_, k) => 1 / (k + 1.5));
      const m = new StemMixer(outs, residual, format, clip, gains);
      const got = m.block(loud, n, mix).map((b) => b.slice(0, 2 * n));
      // The reference: each sample of each output on its own, as the mixer once did it.
      const at = residual ? outs.findIndex((o) => o.name === 'other' || o.name === 'accompaniment') : -1;
      const rest = [0, 1, 2, 3].filter((s) => !(at >= 0 ? outs[at]!.from : []).includes(s));
      const peaks = outs.map(() => 0);
      let errSq = 0, mixSq = 0;
      const want = outs.map((o, k) => {
        const b = new Float32Array(2 * n);
        for (let c = 0; c < 2; c++) for (let i = 0; i < n; i++) {
          let v: number;
          if (k === at) {
            v = mix[2 * i + c]!;
            for (const s of rest) v -= loud[(s * 2 + c) * n + i]!;
          } else v = mixOf(o, loud, n, c, i);
          peaks[k] = Math.max(peaks[k]!, Math.abs(v));
          const w = v * gains[k]!;
          b[2 * i + c] = clip === 'clamp' ? Math.max(-0.99, Math.min(0.99, w)) : w;
        }
        return b;
      });
      const sum = new Float64Array(2 * n);
      for (const b of want) addReadBack(format, b, 2 * n, sum);
      for (let j = 0; j < 2 * n; j++) {
        errSq += (mix[j]! - sum[j]!) ** 2;
        mixSq += mix[j]! ** 2;
      }
      for (let k = 0; k < outs.length; k++) expect(Buffer.from(got[k]!.buffer).equals(Buffer.from(want[k]!.buffer))).toBe(true);
      expect(m.peaks).toEqual(peaks);
      expect(m.residualDb()).toBe(10 * Math.log10(errSq / mixSq));
      // Measuring only the peaks (rescale's first read) finds the same ones.
      const measured = new StemMixer(outs, residual, format, clip, gains, true);
      measured.block(loud, n, mix);
      expect(measured.peaks).toEqual(peaks);
    }
  });

  it('two stems: the residual goes into accompaniment', () => {
    const m = new StemMixer(outputs(JobOptions.parse({ two_stems: 'vocals', residual: true })), true, 'f32', 'rescale', [1, 1]);
    const [vocals, acc] = m.block(data, n, mix);
    expect(vocals![0]! + acc![0]!).toBeCloseTo(mix[0]!, 6);
  });
});

describe('a preview\'s plan', () => {
  it('runs exactly the chunks of the whole plan that touch the window, and hands on only the window, in every pass', () => {
    for (const shifts of [1, 3]) {
      const opts = JobOptions.parse({ shifts });
      const whole = makePlan(95 * 44100, opts, '01a24163-0664-77e7-9ad5-f96f6ad9f05a', { mean: 0, std: 1 });
      const from = 60 * 44100, to = 90 * 44100;
      const part = windowPlan(whole, from, to);
      expect(part.length).toBe(to - from);
      part.passes.forEach((p, k) => {
        const w = whole.passes[k]!;
        const touching = w.chunks.filter((c) => c.offset + w.view.viewOffset < to && c.offset + c.length + w.view.viewOffset > from);
        expect(p.chunks.map((c) => c.offset + p.view.viewOffset)).toEqual(touching.map((c) => c.offset + w.view.viewOffset));
        expect(p.chunks.map((c) => c.index)).toEqual(touching.map((_, i) => i));
        expect([p.view.trackStart, p.view.trackLength]).toEqual([from, to]);
      });
      if (shifts === 1) expect(part.passes[0]!.chunks).toHaveLength(7);
    }
  });
});
