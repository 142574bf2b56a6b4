/**
 * The gapless header of an MP3 written as a stream. ffmpeg writes the Xing/LAME "Info" frame
 * (frame count, encoder delay and padding: what lets a decoder return exactly the samples that
 * went in) only to a seekable file, at the end. A stem heard while it is made is written to a
 * pipe, but its length is known before the first sample, and for LAME's constant bit rate at the
 * MPEG-1 rates everything the frame holds follows from that length: so the frame is made first,
 * from a template of the same encoder settings, and the stream is the finished file from byte 0.
 * (Measured against ffmpeg's own files: same frame count, delay, padding, byte count, tag CRC.)
 */

/** Rates whose frames hold 1,152 samples (MPEG-1 layer III): the rule below holds for them. */
export const MP3_STREAM_RATES = [32000, 44100, 48000];
const SAMPLES = 1152;
/** LAME's encoder delay as the tag states it (decoders add 529). */
const DELAY = 576;

/** Bytes of an ID3v2 tag at the start of `b` (0 if none); undefined until enough bytes are there to tell. */
export function id3Length(b: Buffer): number | undefined {
  if (b.length < 3) return undefined;
  if (b.toString('latin1', 0, 3) !== 'ID3') return 0;
  if (b.length < 10) return undefined;
  const size = ((b[6]! & 0x7f) << 21) | ((b[7]! & 0x7f) << 14) | ((b[8]! & 0x7f) << 7) | (b[9]! & 0x7f);
  return 10 + size + (b[5]! & 0x10 ? 10 : 0);
}

/** CRC-16/ARC, as the LAME tag uses it. */
function crc16(b: Buffer): number {
  let crc = 0;
  for (const x of b) {
    crc ^= x;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/**
 * The Info frame of a CBR MP3 of `frames` samples per channel at `sampleRate` and `kbps`, made
 * from `template` (the Info frame ffmpeg wrote for any length with the same settings).
 */
export function mp3InfoFrame(template: Buffer, sampleRate: number, kbps: number, frames: number): Buffer {
  const f = Buffer.from(template);
  const xing = Math.max(f.indexOf('Info', 0, 'latin1'), f.indexOf('Xing', 0, 'latin1'));
  const lame = Math.max(f.indexOf('Lavc', 0, 'latin1'), f.indexOf('Lavf', 0, 'latin1'), f.indexOf('LAME', 0, 'latin1'));
  if (xing < 0 || lame < 0 || f.readUInt32BE(xing + 4) !== 0xf) throw new Error('not an Info frame with frames, bytes, TOC and quality');
  // LAME ends with one frame more than the samples need (its flush), delay included.
  const count = Math.ceil(frames / SAMPLES) + 1;
  const audioBytes = Math.floor((count * 144 * kbps * 1000) / sampleRate);
  const total = f.length + audioBytes;
  f.writeUInt32BE(count, xing + 8);
  f.writeUInt32BE(total, xing + 12);
  // Constant bit rate: the table of contents is linear.
  for (let i = 0; i < 100; i++) f[xing + 16 + i] = Math.min(255, Math.floor((i * 256) / 100));
  f.writeUIntBE((DELAY << 12) | (count * SAMPLES - frames - DELAY), lame + 21, 3);
  f.writeUInt32BE(total, lame + 28);
  f.writeUInt16BE(0, lame + 32); // the music CRC is not known before the music (decoders do not need it)
  f.writeUInt16BE(crc16(f.subarray(0, lame + 34)), lame + 34);
  return f;
}
