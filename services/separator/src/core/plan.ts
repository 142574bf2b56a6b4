import { SEGMENT } from '@stemflow/audio';

export type Chunk = { index: number; offset: number; length: number };

/**
 * Where the model runs. `demucs`: apply.py's plan (offsets every stride = (1-overlap)·segment,
 * the last chunk short and zero-padded). `even`: as few full segments as keep at least the
 * requested overlap, spread evenly, so no run is spent on padding (30 s: 5 runs instead of 6).
 */
export function planChunks(length: number, overlap: number, mode: 'even' | 'demucs' = 'even', segment = SEGMENT): Chunk[] {
  const stride = Math.floor((1 - overlap) * segment);
  if (mode === 'demucs' || length <= segment) {
    const out: Chunk[] = [];
    for (let offset = 0, i = 0; offset < length; offset += stride, i++) out.push({ index: i, offset, length: Math.min(segment, length - offset) });
    return out;
  }
  const n = Math.ceil((length - segment) / stride) + 1;
  return Array.from({ length: n }, (_, i) => ({ index: i, offset: Math.round((i * (length - segment)) / (n - 1)), length: segment }));
}

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
