import { JobOptions } from '@stemflow/contracts';
import { describe, expect, it } from 'vitest';
import { readBack } from '@stemflow/audio';
import { StemMixer, outputs } from './assemble.js';
import { makePlan, windowPlan } from './plan.js';

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
    for (let j = 0; j < 2 * n; j++) {
      const sum = outs.reduce((s, o) => s + readBack('wav16', o[j]!), 0);
      err += (mix[j]! - sum) ** 2;
      ref += mix[j]! ** 2;
    }
    expect(m.residualDb()).toBeCloseTo(10 * Math.log10(err / ref), 6);
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
