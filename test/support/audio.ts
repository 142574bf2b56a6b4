import { spawn } from 'node:child_process';

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
