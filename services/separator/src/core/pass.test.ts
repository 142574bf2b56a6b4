import { describe, expect, it } from 'vitest';
import { SEGMENT } from '@stemflow/models/shape';
import type { JobOptions } from '@stemflow/contracts';
import type { HtdemucsEngine } from './engine.js';
import { PLANES, runPass, type Carry, type PassView } from './pass.js';
import { makePlan, planChunks, triangle, windowPlan, type Chunk } from './plan.js';

/**
 * An engine whose "model" is a fixed function of its input segment, different in every sample
 * and every chunk, with no STFT: what the pass does with the outputs is all that is tested.
 */
const model = (seg: Float32Array) => {
  const out = new Float32Array(PLANES * SEGMENT);
  for (let k = 0; k < out.length; k++) out[k] = seg[k % (2 * SEGMENT)]! * (1 + (k % 7) / 10) + ((k * 2654435761) % 1000) / 1e5;
  return out;
};
const engine = () => ({
  lanes: 2,
  withdraw() {},
  prepare: async (seg: Float32Array) => ({ mix: seg, spec: new Float32Array(0) }),
  infer: async (p: { mix: Float32Array }) => ({ freq: p.mix, time: p.mix }),
  finish: async (o: { freq: Float32Array }) => model(o.freq),
}) as unknown as HtdemucsEngine;

const FRAMES = 1_100_003; // four even chunks; the demucs plan's last one short
const track = [0, 1].map((c) => Float32Array.from({ length: FRAMES }, (_, i) => Math.sin(i * (0.001 + c * 0.0007)) * 0.5));
const read = async (start: number, len: number) => {
  const o = new Float32Array(2 * len);
  for (let i = 0; i < len; i++) {
    const j = start + i;
    if (j >= 0 && j < FRAMES) [o[i], o[len + i]] = [track[0]![j]!, track[1]![j]!];
  }
  return o;
};

/**
 * apply.py's overlap-add over the whole view at once, in float32 like the pass: every chunk's
 * weighted output summed in chunk order, then divided by the summed weights; the track's part.
 */
async function reference(view: PassView, chunks: Chunk[]): Promise<{ start: number; data: Float32Array }> {
  const w = triangle();
  const acc = new Float32Array(PLANES * view.viewLength);
  const wsum = new Float32Array(view.viewLength);
  for (const c of chunks) {
    const pad = Math.floor((SEGMENT - c.length) / 2);
    const out = model(await read(c.offset - pad + view.viewOffset, SEGMENT));
    for (let p = 0; p < PLANES; p++) for (let i = 0; i < c.length && c.offset + i < view.viewLength; i++) acc[p * view.viewLength + c.offset + i]! += out[p * SEGMENT + pad + i]! * w[i]!;
    for (let i = 0; i < c.length && c.offset + i < view.viewLength; i++) wsum[c.offset + i]! += w[i]!;
  }
  const t0 = Math.max(view.trackStart ?? 0, view.viewOffset);
  const t1 = Math.min(view.trackLength, view.viewLength + view.viewOffset);
  const data = new Float32Array(PLANES * (t1 - t0));
  for (let p = 0; p < PLANES; p++) for (let t = t0; t < t1; t++) data[p * (t1 - t0) + t - t0] = acc[p * view.viewLength + t - view.viewOffset]! / wsum[t - view.viewOffset]!;
  return { start: t0, data };
}

/** What a pass hands on, concatenated per plane, and the carry after each chunk. */
async function streamed(view: PassView, chunks: Chunk[], resume?: { after: number; carry: Carry }) {
  const regions: { start: number; length: number; data: Float32Array }[] = [];
  const carries: Carry[] = [];
  await runPass(engine(), read, view, chunks, {
    onChunk: async (_k, r, c) => {
      regions.push(r);
      carries.push(c);
    },
  }, resume);
  const length = regions.reduce((n, r) => n + r.length, 0);
  const data = new Float32Array(PLANES * length);
  let at = 0;
  for (const r of regions) {
    for (let p = 0; p < PLANES; p++) data.set(r.data.subarray(p * r.length, (p + 1) * r.length), p * length + at);
    at += r.length;
  }
  return { start: regions[0]?.start, data, carries, lengths: regions.map((r) => r.length) };
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const options = { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 2, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 } as JobOptions;
const shifted = makePlan(FRAMES, options, '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f12', { mean: 0, std: 1 });
const whole = { viewOffset: 0, viewLength: FRAMES, trackLength: FRAMES };
const views: [string, PassView, Chunk[]][] = [
  ['even chunks', whole, planChunks(FRAMES, 0.25, 'even')],
  ["apply.py's chunks, the last one short", whole, planChunks(FRAMES, 0.25, 'demucs')],
  ['a shifted pass (the view starts before the track and ends after it)', shifted.passes[1]!.view, shifted.passes[1]!.chunks],
  ['a window of a shifted pass (a preview)', ...(({ view, chunks }) => [view, chunks] as const)(windowPlan(shifted, 400_000, 900_000).passes[0]!)],
];

// Each case separates about 1.1 M frames of a fake model some ten times (a few seconds).
describe('a pass hands on, chunk by chunk, what overlap-adding the whole view at once gives', { timeout: 60_000 }, () => {
  it.each(views)('bit for bit, %s, and resumed from every chunk\'s carry', async (_name, view, chunks) => {
    const want = await reference(view, chunks);
    const got = await streamed(view, chunks);
    expect(got.start).toBe(want.start);
    expect(got.data.length).toBe(want.data.length);
    expect(bits(got.data).equals(bits(want.data))).toBe(true);
    for (let k = 0; k < chunks.length - 1; k++) {
      const rest = await streamed(view, chunks, { after: k, carry: got.carries[k]! });
      const before = got.lengths.slice(0, k + 1).reduce((a, b) => a + b, 0);
      const tail = new Float32Array(PLANES * (want.data.length / PLANES - before));
      const n = want.data.length / PLANES;
      for (let p = 0; p < PLANES; p++) tail.set(want.data.subarray(p * n + before, (p + 1) * n), p * (n - before));
      expect(bits(rest.data).equals(bits(tail)), `resumed after chunk ${k}`).toBe(true);
    }
  });
});
