import { MAX_SHIFT_FRAMES, SEGMENT, planChunks, type Chunk } from '@stemflow/models/shape';
import type { JobOptions } from '@stemflow/contracts';
import type { PassView } from './pass.js';

/** The chunk plan lives beside the model (models/src/plan.ts): the gateway and decoder bound a job's cost by the same rule. */
export { planChunks, type Chunk };

/** apply.py's triangular weight over a segment, peak 1. */
export function triangle(segment = SEGMENT): Float32Array {
  const w = new Float32Array(segment);
  const half = Math.floor(segment / 2);
  for (let i = 0; i < half + 1; i++) w[i] = i + 1;
  for (let i = half + 1; i < segment; i++) w[i] = segment - i;
  let max = 0;
  for (const v of w) max = Math.max(max, v);
  for (let i = 0; i < segment; i++) w[i]! /= max;
  return w;
}

/** A job's plan: the track's length and normalization, and the chunks of each pass (one per shift). */
export type Plan = { length: number; mean: number; std: number; passes: { view: PassView; chunks: Chunk[] }[] };

/** Deterministic per job, so a resumed job makes the same shifts. */
function seededOffsets(jobId: string, count: number, max: number): number[] {
  let s = parseInt(jobId.replace(/-/g, '').slice(-8), 16) || 1;
  return Array.from({ length: count }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % (max + 1);
  });
}

export function makePlan(frames: number, opts: JobOptions, jobId: string, stats: { mean: number; std: number }): Plan {
  const passes: Plan['passes'] = [];
  if (opts.shifts <= 1) {
    passes.push({ view: { viewOffset: 0, viewLength: frames, trackLength: frames }, chunks: planChunks(frames, opts.overlap) });
  } else {
    // apply.py: pad by max_shift, shift by a random offset, keep out[max_shift - offset:].
    const maxShift = MAX_SHIFT_FRAMES;
    for (const off of seededOffsets(jobId, opts.shifts, maxShift)) {
      const viewLength = frames + maxShift - off;
      passes.push({ view: { viewOffset: off - maxShift, viewLength, trackLength: frames }, chunks: planChunks(viewLength, opts.overlap) });
    }
  }
  return { length: frames, ...stats, passes };
}

/**
 * The part of a whole track's plan that makes track positions [from, to): in each pass, the
 * chunks that touch the window, with a view that starts at the first of them and hands on only
 * the window. Every chunk the whole separation would add into the window is run, with the same
 * input and the same normalization, so the window comes out as the whole separation's does.
 */
export function windowPlan(plan: Plan, from: number, to: number): Plan {
  return {
    ...plan,
    length: to - from,
    passes: plan.passes.map(({ view, chunks }) => {
      const a = from - view.viewOffset;
      const b = to - view.viewOffset;
      const touch = chunks.filter((c) => c.offset < b && c.offset + c.length > a);
      const first = touch[0]!.offset;
      const last = touch[touch.length - 1]!;
      return {
        view: { viewOffset: view.viewOffset + first, viewLength: last.offset + last.length - first, trackLength: to, trackStart: from },
        chunks: touch.map((c, index) => ({ index, offset: c.offset - first, length: c.length })),
      };
    }),
  };
}
