import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs ffmpeg and returns its stdout (fixtures are generated, never committed). */
export function ffmpeg(args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', ['-v', 'error', ...args]);
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg ${args.join(' ')}: ${err}`))));
    // ffmpeg may stop reading before the end (a trim): that is not an error here.
    p.stdin.on('error', () => {});
    if (input) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** A stereo sine tone as a 16-bit WAV file. */
export const toneWav = (sec = 1, hz = 440, rate = 44100) =>
  ffmpeg(['-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=${rate}:duration=${sec}`, '-ac', '2', '-c:a', 'pcm_s16le', '-f', 'wav', '-']);

/**
 * Runs ffmpeg writing to a real (seekable) file, as encoders do for files people have: headers
 * that are finished at the end (mp3 gapless info, flac sample count, mp4 index) are complete.
 */
export async function ffmpegFile(args: string[], ext: string): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'fixture-'));
  const out = join(dir, `out.${ext}`);
  try {
    await ffmpeg([...args, '-y', out]);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `data` behind an ID3v2 tag of `size` bytes: sniffed as MP3 whatever follows. */
export function id3Wrapped(data: Buffer | string, size = 300_000): Buffer {
  const header = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, (size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f]);
  return Buffer.concat([header, Buffer.alloc(size), Buffer.from(data)]);
}

/** An HLS playlist with one entry, and an ffconcat script with one file. */
export const hlsPlaylist = (entry: string) => `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n${entry}\n#EXT-X-ENDLIST\n`;
export const ffconcat = (entry: string) => `ffconcat version 1.0\nfile '${entry}'\n`;

/** A FLAC whose STREAMINFO states `sec` seconds, whatever it holds (a header that lies). */
export function lyingFlac(flac: Buffer, sec: number): Buffer {
  const out = Buffer.from(flac);
  // "fLaC", the STREAMINFO block header, then: 10 bytes of sizes, 20 bits of sample rate,
  // 3 + 5 bits of channels and depth, 36 bits of total samples.
  const b = 8;
  const rate = (out[b + 10]! << 12) | (out[b + 11]! << 4) | (out[b + 12]! >> 4);
  const total = BigInt(Math.round(rate * sec));
  out[b + 13] = (out[b + 13]! & 0xf0) | Number((total >> 32n) & 0x0fn);
  out.writeUInt32BE(Number(total & 0xffffffffn), b + 14);
  return out;
}
