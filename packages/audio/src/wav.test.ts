import { describe, expect, it } from 'vitest';
import type { AudioFormat } from '@stemflow/contracts';
import { addReadBack, quantize, type WavFormat } from './wav.js';

/** Samples at and past full scale, both zeros, halfway roundings, and noise. */
const samples = Float32Array.from([0, -0, 1, -1, 1.5, -1.5, 0.99999, -0.99999, 0.5 / 32768, -0.5 / 32768, 1.5 / 32768, -1.5 / 32768, -2.5 / 32768, 0.5 / 8388608, -0.5 / 8388608, 3e-12, -1e-40, ...Array.from({ length: 997 }, (_, i) => Math.sin(i * 0.37) * 1.1)]);

/** A sample as a whole number of `full` steps: round to nearest, saturate, as ffmpeg converts. */
const int = (v: number, full: number) => Math.max(-full, Math.min(full - 1, Math.round(v * full)));

/** What a reader of a file gets back for a sample written as `v`, one sample at a time. */
function readBack(format: AudioFormat, v: number): number {
  if (format === 'wav16') return int(v, 32768) / 32768;
  if (format === 'wav24' || format === 'flac') return int(v, 8388608) / 8388608;
  return format === 'f32' ? Math.fround(v) : v;
}

/** What Buffer's own writers make of them, one sample at a time. */
function reference(format: WavFormat, src: Float32Array): Buffer {
  const b = Buffer.alloc(src.length * { wav16: 2, wav24: 3, f32: 4 }[format]);
  for (let i = 0; i < src.length; i++) {
    if (format === 'f32') b.writeFloatLE(src[i]!, 4 * i);
    else if (format === 'wav16') b.writeInt16LE(int(src[i]!, 32768), 2 * i);
    else b.writeIntLE(int(src[i]!, 8388608), 3 * i, 3);
  }
  return b;
}

describe('quantize', () => {
  for (const format of ['wav16', 'wav24', 'f32'] as const) {
    it(`${format}: the bytes Buffer's writers make, into a fresh buffer and into an unaligned one`, () => {
      const want = reference(format, samples);
      expect(quantize(format, samples, samples.length, Buffer.alloc(0)).subarray(0, want.length).equals(want)).toBe(true);
      // A view at an odd offset (no typed view fits it): the per-sample path, the same bytes.
      const odd = Buffer.alloc(want.length + 1).subarray(1);
      expect(quantize(format, samples, samples.length, odd).equals(want)).toBe(true);
    });
  }
});

describe('addReadBack', () => {
  it('adds readBack of each sample, for each format', () => {
    for (const format of ['wav16', 'wav24', 'flac', 'f32', 'mp3'] as const) {
      const into = Float64Array.from(samples, (_, j) => j * 1e-3);
      addReadBack(format, samples, samples.length, into);
      for (let j = 0; j < samples.length; j++) expect(into[j]).toBe(j * 1e-3 + readBack(format, samples[j]!));
    }
  });
});
