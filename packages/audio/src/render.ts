/**
 * What the mixer page needs from the server, rendered from stored stems: waveform peaks (min/max
 * per block at several zoom levels) and a mixdown of chosen stems with gains. Both stream the
 * stems through ffmpeg: a stem is never held whole in memory.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AudioFormat } from '@stemflow/contracts';
import { PEAK_LEVELS, StemflowError, type PeakLevel } from '@stemflow/contracts';
import { CODEC_ARGS, rateFor } from './encode.js';
import { BYTES_PER_FRAME, SAMPLE_RATE, decodeToPcm } from './ffmpeg.js';
import { inputArgs, type MediaSource } from './media.js';

/** Zoom levels served, in samples per pixel: each twice the one before (the API's contract). */
export { PEAK_LEVELS, type PeakLevel };

/**
 * The waveform JSON of BBC's audiowaveform (version 2), which peaks.js and waveform-data.js read as
 * is: `data` holds, per block of `samples_per_pixel` frames, the minimum then the maximum sample
 * over both channels, scaled to signed 16-bit. wavesurfer.js takes `data.map(v => v / 32768)` as
 * its `peaks`, with the stem's duration.
 */
export type Peaks = {
  version: 2;
  channels: 1;
  sample_rate: number;
  samples_per_pixel: number;
  bits: 16;
  length: number;
  data: number[];
};

/** The demuxer that reads a stored stem of a format (stems are stemflow's own files). */
export const STEM_DEMUXER: Record<AudioFormat, string> = { wav16: 'wav', wav24: 'wav', f32: 'wav', flac: 'flac', mp3: 'mp3' };

const toInt16 = (v: number) => Math.max(-32768, Math.min(32767, Math.round(v * 32767)));

/** Folds interleaved stereo float frames into min/max blocks of the finest level (streaming). */
export class PeakAccumulator {
  private readonly mins: number[] = [];
  private readonly maxs: number[] = [];
  private lo = Infinity;
  private hi = -Infinity;
  private inBlock = 0;
  private carry = Buffer.alloc(0);

  constructor(private readonly block: number = PEAK_LEVELS[0]) {}

  push(chunk: Buffer): void {
    const bytes = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = bytes.length - (bytes.length % BYTES_PER_FRAME);
    const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + whole));
    this.carry = Buffer.from(bytes.subarray(whole));
    for (let i = 0; i < f.length; i += 2) {
      const l = f[i]!;
      const r = f[i + 1]!;
      const a = l < r ? l : r;
      const b = l > r ? l : r;
      if (a < this.lo) this.lo = a;
      if (b > this.hi) this.hi = b;
      if (++this.inBlock === this.block) this.close();
    }
  }

  private close() {
    this.mins.push(this.lo);
    this.maxs.push(this.hi);
    this.lo = Infinity;
    this.hi = -Infinity;
    this.inBlock = 0;
  }

  /** Every level, the coarser ones merged from the finest (so all agree exactly). */
  levels(sampleRate = SAMPLE_RATE): Map<PeakLevel, Peaks> {
    if (this.inBlock > 0) this.close();
    const out = new Map<PeakLevel, Peaks>();
    let mins = this.mins;
    let maxs = this.maxs;
    for (const spp of PEAK_LEVELS) {
      if (spp !== PEAK_LEVELS[0]) {
        const m: number[] = [];
        const x: number[] = [];
        for (let i = 0; i < mins.length; i += 2) {
          m.push(Math.min(mins[i]!, mins[i + 1] ?? Infinity));
          x.push(Math.max(maxs[i]!, maxs[i + 1] ?? -Infinity));
        }
        mins = m;
        maxs = x;
      }
      const data = new Array<number>(mins.length * 2);
      for (let i = 0; i < mins.length; i++) {
        data[2 * i] = toInt16(mins[i]!);
        data[2 * i + 1] = toInt16(maxs[i]!);
      }
      out.set(spp, { version: 2, channels: 1, sample_rate: sampleRate, samples_per_pixel: spp, bits: 16, length: mins.length, data });
    }
    return out;
  }
}

/** Decodes a stored stem once and returns its peaks at every level. */
export async function computePeaks(src: MediaSource, o: { maxSec: number; timeoutMs?: number }): Promise<Map<PeakLevel, Peaks>> {
  const run = decodeToPcm(src, {
    maxSec: o.maxSec,
    tooLong: () => new StemflowError('STEM_TOO_LONG', 'the stem is longer than its job says'),
    timeoutMs: o.timeoutMs ?? 300_000,
    stallMs: 60_000,
  });
  const acc = new PeakAccumulator();
  try {
    for await (const chunk of run.pcm) acc.push(chunk as Buffer);
  } finally {
    run.kill();
  }
  const { code, stderr } = await run.done;
  if (code !== 0 && code !== null) throw new Error(`ffmpeg could not read the stem: ${stderr.trim().split('\n').pop()}`);
  return acc.levels();
}

export type MixInput = { src: MediaSource; gain: number };

/**
 * Sums stems with linear gains into one file of `format` at `file` (a local path: the container's
 * header is written once the length is known). The sum is made in float (f32 keeps it exactly);
 * when it would go over full scale, `rescale` lowers the whole mix to peak at full scale (as the
 * separator does with stems) and `clamp` clips it. Returns the peak of the sum and the gain
 * applied. Rejects, with ffmpeg killed, on any failure or after `timeoutMs`.
 */
export async function renderMix(inputs: MixInput[], format: AudioFormat, file: string, o: { clip?: 'rescale' | 'clamp'; timeoutMs?: number; sampleRate?: number | undefined; tempo?: number | undefined; semitones?: number | undefined } = {}): Promise<{ peak: number; gain: number }> {
  const rate = String(rateFor(format, o.sampleRate ?? SAMPLE_RATE));
  if (!inputs.length) throw new StemflowError('EMPTY_MIX', 'a mix needs at least one stem', { status: 400 });
  const timeoutMs = o.timeoutMs ?? 300_000;
  const n = inputs.length;
  const g = (v: number) => v.toFixed(6);
  const side = (ch: 0 | 1) => inputs.map((x, i) => `${g(x.gain)}*c${2 * i + ch}`).join('+');
  const merge = n > 1 ? `${inputs.map((_, i) => `[${i}:a]`).join('')}amerge=inputs=${n},` : '[0:a]';
  // Practice versions: time-stretched and transposed together by Rubber Band (ffmpeg's rubberband filter).
  const tempo = o.tempo ?? 1, semitones = o.semitones ?? 0;
  const stretch = tempo !== 1 || semitones !== 0 ? `,rubberband=tempo=${tempo}:pitch=${(2 ** (semitones / 12)).toFixed(9)}:pitchq=quality` : '';
  const filter = `${merge}pan=stereo|c0=${side(0)}|c1=${side(1)}${stretch}[out]`;
  // Pass 1: the float sum, raw, beside the target; its peak is measured as it streams out.
  const raw = `${file}.f32`;
  try {
    const peak = await ffmpegRun(['-nostdin', '-v', 'error', ...inputs.flatMap((x) => inputArgs(x.src)), '-filter_complex', filter, '-map', '[out]', '-ar', rate, '-f', 'f32le', '-c:a', 'pcm_f32le', 'pipe:1'], timeoutMs, raw);
    const gain = peak > 1 && (o.clip ?? 'rescale') === 'rescale' && format !== 'f32' ? 1 / peak : 1;
    // Pass 2: the target format (the gain, if any, applied in float before it).
    await ffmpegRun(['-nostdin', '-v', 'error', '-f', 'f32le', '-ar', rate, '-ac', '2', '-i', `file:${raw}`, ...(gain !== 1 ? ['-af', `volume=${gain.toFixed(9)}`] : []), ...CODEC_ARGS[format], '-y', file], timeoutMs);
    return { peak, gain };
  } finally {
    await unlink(raw).catch(() => {});
  }
}

/** Runs ffmpeg; with `tee`, its stdout (f32 samples) goes to that file and the largest |sample| is returned. */
function ffmpegRun(args: string[], timeoutMs: number, tee?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', args, { stdio: ['ignore', tee ? 'pipe' : 'ignore', 'pipe'] });
    let stderr = '';
    let peak = 0;
    p.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const written = tee ? pipeline(p.stdout!, new Transform({
      transform(chunk: Buffer, _e, cb) {
        const whole = chunk.length - (chunk.length % 4);
        const f = new Float32Array(chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + whole));
        for (let i = 0; i < f.length; i++) {
          const a = Math.abs(f[i]!);
          if (a > peak) peak = a;
        }
        cb(null, chunk);
      },
    }), createWriteStream(tee)) : Promise.resolve();
    written.catch(() => p.kill('SIGKILL'));
    p.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(signal ? `the mix was stopped (${signal}, over ${Math.round(timeoutMs / 1000)} s)` : `ffmpeg could not mix the stems: ${stderr.trim().split('\n').pop()}`));
      written.then(() => resolve(peak), reject);
    });
  });
}
