/**
 * WAV written by stemflow itself, not by an encoder process: the length of every stem is known
 * before its first sample is made, so the header is final from the first byte and a file that is
 * read while it grows (a stem streamed while the job runs) is the same file it will be when done.
 * Samples are converted as ffmpeg converts them (round to nearest, saturate).
 */
import type { AudioFormat } from '@stemflow/contracts';
import { CHANNELS } from './ffmpeg.js';

export type WavFormat = Extract<AudioFormat, 'wav16' | 'wav24' | 'f32'>;
export const isWav = (f: AudioFormat): f is WavFormat => f === 'wav16' || f === 'wav24' || f === 'f32';
export const WAV_BYTES: Record<WavFormat, number> = { wav16: 2, wav24: 3, f32: 4 };

/**
 * The header of a stereo WAV of `frames` frames: canonical 44 bytes for 16-bit, WAVE_FORMAT_EXTENSIBLE
 * for 24-bit and float (with a fact chunk for float). RF64 is not needed below 4 GiB of data.
 */
export function wavHeader(format: WavFormat, sampleRate: number, frames: number): Buffer {
  const bytes = WAV_BYTES[format];
  const data = frames * CHANNELS * bytes;
  const extensible = format !== 'wav16';
  const fmtSize = extensible ? 40 : 16;
  const fact = format === 'f32';
  const h = Buffer.alloc(12 + 8 + fmtSize + (fact ? 12 : 0) + 8);
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
export const wavBytes = (format: WavFormat, sampleRate: number, frames: number) => wavHeader(format, sampleRate, 0).length + frames * CHANNELS * WAV_BYTES[format];

/**
 * Interleaved float samples → the format's little-endian samples, into `out` (grown as needed).
 * Returns the bytes written and, in `q` (same length as `src`), the value each sample now has, as
 * a float: what a reader of the file gets back.
 */
export function quantize(format: WavFormat, src: Float32Array, count: number, out: Buffer, q: Float32Array): Buffer {
  const size = count * WAV_BYTES[format];
  const buf = out.length >= size ? out : Buffer.alloc(size);
  if (format === 'f32') {
    for (let i = 0; i < count; i++) {
      buf.writeFloatLE(src[i]!, 4 * i);
      q[i] = src[i]!;
    }
  } else if (format === 'wav16') {
    for (let i = 0; i < count; i++) {
      const v = Math.max(-32768, Math.min(32767, Math.round(src[i]! * 32768)));
      buf.writeInt16LE(v, 2 * i);
      q[i] = v / 32768;
    }
  } else {
    for (let i = 0; i < count; i++) {
      const v = Math.max(-8388608, Math.min(8388607, Math.round(src[i]! * 8388608)));
      buf.writeIntLE(v, 3 * i, 3);
      q[i] = v / 8388608;
    }
  }
  return buf;
}
