/**
 * The stems from the model's 44.1 kHz to the stems' rate: every plane through one ffmpeg (the SoX
 * resampler, as the decoder uses), streaming, so a block goes in as soon as it is final and comes
 * out a few milliseconds of filter delay later.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { StemflowError } from '@stemflow/contracts';

/** Planar float samples: `planes` planes of `n` samples each. */
export type Block = { data: Float32Array; n: number };

export async function* resampleBlocks(src: AsyncIterable<Block>, from: number, to: number, planes: number): AsyncGenerator<Block> {
  const p = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'f32le', '-ar', String(from), '-ac', String(planes), '-i', 'pipe:0', '-af', `aresample=${to}:resampler=soxr:precision=28`, '-f', 'f32le', '-c:a', 'pcm_f32le', '-ac', String(planes), 'pipe:1'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  p.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
  p.stdin.on('error', () => {});
  let exited = false;
  const closed = new Promise<number | null>((res) => p.on('close', (code) => ((exited = true), res(code))));
  const spawnFailed = new Promise<never>((_, rej) => p.on('error', (err) => rej(new StemflowError('FFMPEG_MISSING', `ffmpeg could not run: ${err.message}`, { retryable: true }))));
  spawnFailed.catch(() => {});
  // Feeds the blocks while the output is read: a full pipe on either side never waits on the other.
  let pumpError: unknown;
  const pump = (async () => {
    for await (const b of src) {
      const buf = Buffer.allocUnsafe(4 * planes * b.n);
      const f = new Float32Array(buf.buffer, buf.byteOffset, planes * b.n);
      for (let c = 0; c < planes; c++) for (let i = 0; i < b.n; i++) f[i * planes + c] = b.data[c * b.n + i]!;
      if (!p.stdin.write(buf)) await Promise.race([once(p.stdin, 'drain'), closed]);
      if (exited) break;
    }
    p.stdin.end();
  })().catch((err: unknown) => {
    pumpError = err;
    p.kill('SIGKILL');
  });
  try {
    const frame = 4 * planes;
    let rest = Buffer.alloc(0);
    for await (const chunk of p.stdout as AsyncIterable<Buffer>) {
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
    if (pumpError !== undefined) throw pumpError;
    const code = await Promise.race([closed, spawnFailed]);
    if (code !== 0) throw new StemflowError('RESAMPLE_FAILED', `resampling the stems to ${to} Hz failed: ${stderr.trim().split('\n').pop() ?? `ffmpeg exited with ${code}`}`, { retryable: true });
  } finally {
    if (!exited) p.kill('SIGKILL');
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
