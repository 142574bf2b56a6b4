import { SEGMENT } from '@stemflow/audio';

/** The chunk plan lives in packages/audio: the gateway and decoder bound a job's cost by the same rule. */
export { planChunks, type Chunk } from '@stemflow/audio';

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
