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
