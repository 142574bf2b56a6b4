/**
 * WAV written by stemflow itself, not by an encoder process: the length of every stem is known
 * before its first sample is made, so the header is final from the first byte and a file that is
 * read while it grows (a stem streamed while the job runs) is the same file it will be when done.
 * Samples are converted as ffmpeg converts them (round to nearest, saturate).
 */
import type { AudioFormat } from '@stemflow/contracts';
import { endianness } from 'node:os';
import { CHANNELS } from './ffmpeg.js';

export type WavFormat = Extract<AudioFormat, 'wav16' | 'wav24' | 'f32'>;
export const isWav = (f: AudioFormat): f is WavFormat => f === 'wav16' || f === 'wav24' || f === 'f32';
export const WAV_BYTES: Record<WavFormat, number> = { wav16: 2, wav24: 3, f32: 4 };

const fmtBytes = (format: WavFormat) => (format === 'wav16' ? 16 : 40);
/** Bytes of the header `wavHeader` writes: RIFF, fmt, fact (float only), data. */
export const wavHeaderBytes = (format: WavFormat) => 12 + 8 + fmtBytes(format) + (format === 'f32' ? 12 : 0) + 8;

/**
 * The header of a stereo WAV of `frames` frames: canonical 44 bytes for 16-bit, WAVE_FORMAT_EXTENSIBLE
 * for 24-bit and float (with a fact chunk for float). RF64 is not needed below 4 GiB of data.
 */
export function wavHeader(format: WavFormat, sampleRate: number, frames: number): Buffer {
  const bytes = WAV_BYTES[format];
  const data = frames * CHANNELS * bytes;
  const extensible = format !== 'wav16';
  const fmtSize = fmtBytes(format);
  const fact = format === 'f32';
  const h = Buffer.alloc(wavHeaderBytes(format));
  let at = 0;
  const tag = (t: string) => (at = h.write(t, at, 'ascii') + at);
  const u32 = (v: number) => (at = h.writeUInt32LE(v, at));
  const u16 = (v: number) => (at = h.writeUInt16LE(v, at));
  tag('RIFF');
  u32(h.length - 8 + data);
  tag('WAVE');
  tag('fmt ');
  u32(fmtSize);
  u16(extensible ? 0xfffe : 1);
  u16(CHANNELS);
  u32(sampleRate);
  u32(sampleRate * CHANNELS * bytes);
  u16(CHANNELS * bytes);
  u16(bytes * 8);
  if (extensible) {
    u16(22);
    u16(bytes * 8); // valid bits
    u32(3); // front left | front right
    // The sub-format GUID: PCM (1) or IEEE float (3), then the fixed tail.
    u32(format === 'f32' ? 3 : 1);
    h.write('00001000800000aa00389b71', at, 'hex');
    at += 12;
  }
  if (fact) {
    tag('fact');
    u32(4);
    u32(frames);
  }
  tag('data');
  u32(data);
  return h;
}

/** Bytes of a WAV file of `frames` stereo frames. */
export const wavBytes = (format: WavFormat, frames: number) => wavHeaderBytes(format) + frames * CHANNELS * WAV_BYTES[format];
/** Whole frames in the first `bytes` bytes of such a file. */
export const wavFramesIn = (format: WavFormat, bytes: number) => Math.max(0, Math.floor((bytes - wavHeaderBytes(format)) / (CHANNELS * WAV_BYTES[format])));

/**
 * A float32 sample as a whole number of the format: round to nearest, saturate, as ffmpeg
 * converts. Every sample of every stem passes here: for a float32 v, v·2^k + 0.5 is exact in
 * double, so its floor is Math.round's result (but for a zero's sign, which no integer keeps), at
 * half the cost.
 */
const int16 = (v: number) => {
  const x = Math.floor(v * 32768 + 0.5);
  return x < -32768 ? -32768 : x > 32767 ? 32767 : x;
};
const int24 = (v: number) => {
  const x = Math.floor(v * 8388608 + 0.5);
  return x < -8388608 ? -8388608 : x > 8388607 ? 8388607 : x;
};

/**
 * Adds what a reader of a stem file gets back for each sample of `src` (MP3, lossy: the sample)
 * into into[j], j < count: one loop per format, no call per sample.
 */
export function addReadBack(format: AudioFormat, src: Float32Array, count: number, into: Float64Array): void {
  switch (format) {
    case 'wav16':
      for (let j = 0; j < count; j++) into[j]! += int16(src[j]!) / 32768;
      return;
    case 'wav24':
    case 'flac':
      for (let j = 0; j < count; j++) into[j]! += int24(src[j]!) / 8388608;
      return;
    default:
      // f32 (what a Float32Array holds already) and MP3 (lossy: the sample itself).
      for (let j = 0; j < count; j++) into[j]! += src[j]!;
  }
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Interleaved float samples → the format's little-endian samples, into `out` (grown as needed). */
export function quantize(format: WavFormat, src: Float32Array, count: number, out: Buffer): Buffer {
  const size = count * WAV_BYTES[format];
  const buf = out.length >= size ? out : Buffer.alloc(size);
  // Through a typed view where the buffer allows one (every stem's every sample passes here);
  // Buffer's per-sample writers otherwise. The bytes are the same.
  const aligned = LITTLE_ENDIAN && buf.byteOffset % WAV_BYTES[format] === 0;
  if (format === 'f32') {
    if (aligned) new Float32Array(buf.buffer, buf.byteOffset, count).set(src.subarray(0, count));
    else for (let i = 0; i < count; i++) buf.writeFloatLE(src[i]!, 4 * i);
  } else if (format === 'wav16') {
    if (aligned) {
      const v = new Int16Array(buf.buffer, buf.byteOffset, count);
      for (let i = 0; i < count; i++) v[i] = int16(src[i]!);
    } else for (let i = 0; i < count; i++) buf.writeInt16LE(int16(src[i]!), 2 * i);
  } else {
    for (let i = 0, o = 0; i < count; i++, o += 3) {
      const x = int24(src[i]!) & 0xffffff;
      buf[o] = x & 0xff;
      buf[o + 1] = (x >> 8) & 0xff;
      buf[o + 2] = x >> 16;
    }
  }
  return buf;
}
