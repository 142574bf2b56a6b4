/**
 * The stems from the model's 44.1 kHz to the stems' rate: every plane through one ffmpeg (the SoX
 * resampler, as the decoder uses), streaming, so a block goes in as soon as it is final and comes
 * out a few milliseconds of filter delay later.
 */
import { resampleFilter, startPcmFilter } from '@stemflow/audio';
import { StemflowError } from '@stemflow/contracts';

/** Planar float samples: `planes` planes of `n` samples each. */
export type Block = { data: Float32Array; n: number };

export async function* resampleBlocks(src: AsyncIterable<Block>, from: number, to: number, planes: number): AsyncGenerator<Block> {
  const ff = startPcmFilter(resampleFilter(to), from, planes, `the stems resampled to ${to} Hz`);
  // ffmpeg's failure says what it was doing; what the blocks' source throws goes on as it is.
  const failed = (err: unknown): never => {
    throw err instanceof StemflowError ? err : new StemflowError('RESAMPLE_FAILED', (err as Error).message, { retryable: true });
  };
  // Feeds the blocks while the output is read: a full pipe on either side never waits on the other.
  const pump = (async () => {
    for await (const b of src) {
      const buf = Buffer.allocUnsafe(4 * planes * b.n);
      const f = new Float32Array(buf.buffer, buf.byteOffset, planes * b.n);
      for (let c = 0; c < planes; c++) for (let i = 0; i < b.n; i++) f[i * planes + c] = b.data[c * b.n + i]!;
      await ff.write(buf).catch(failed);
    }
    await ff.finish().catch(failed);
  })();
  pump.catch(() => ff.kill());
  try {
    const frame = 4 * planes;
    let rest = Buffer.alloc(0);
    for await (const chunk of ff.stdout as AsyncIterable<Buffer>) {
      const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      const n = Math.floor(buf.length / frame);
      rest = Buffer.from(buf.subarray(n * frame));
      if (n === 0) continue;
      const inter = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + n * frame));
      const data = new Float32Array(planes * n);
      for (let c = 0; c < planes; c++) for (let i = 0; i < n; i++) data[c * n + i] = inter[i * planes + c]!;
      yield { data, n };
    }
    await pump;
  } finally {
    await ff.kill();
  }
}

/** Exactly `frames` frames: what comes beyond is dropped, what is missing at the end is silence. */
export async function* exactLength(src: AsyncIterable<Block>, frames: number, planes: number): AsyncGenerator<Block> {
  let at = 0;
  for await (const b of src) {
    if (at >= frames) continue;
    const n = Math.min(b.n, frames - at);
    if (n === b.n) yield b;
    else {
      const data = new Float32Array(planes * n);
      for (let c = 0; c < planes; c++) data.set(b.data.subarray(c * b.n, c * b.n + n), c * n);
      yield { data, n };
    }
    at += n;
  }
  if (at < frames) yield { data: new Float32Array(planes * (frames - at)), n: frames - at };
}
