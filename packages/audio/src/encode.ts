/**
 * Stem encoders: interleaved float PCM in, an output format out (a file, or a pipe), by an ffmpeg
 * child process that this module owns. Whoever starts one either finishes it or kills it (the
 * separator's stem writer kills every one it started on any failure or abort), so no ffmpeg
 * outlives the job that needed it.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { StemflowError, type AudioFormat } from '@stemflow/contracts';
import { CHANNELS } from './ffmpeg.js';

export const CODEC_ARGS: Record<AudioFormat, string[]> = {
  wav16: ['-c:a', 'pcm_s16le', '-f', 'wav'],
  wav24: ['-c:a', 'pcm_s24le', '-f', 'wav'],
  f32: ['-c:a', 'pcm_f32le', '-f', 'wav'],
  flac: ['-c:a', 'flac', '-sample_fmt', 's32', '-bits_per_raw_sample', '24', '-f', 'flac'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '320k', '-f', 'mp3'],
};
export const FORMAT_CONTENT_TYPE: Record<AudioFormat, string> = { wav16: 'audio/wav', wav24: 'audio/wav', f32: 'audio/wav', flac: 'audio/flac', mp3: 'audio/mpeg' };

export type Encoder = {
  /** Resolves once ffmpeg took the block (back-pressure); rejects if the encoder died. */
  write(interleaved: Buffer): Promise<void>;
  /** Ends the input and waits for the file to be complete. */
  finish(): Promise<void>;
  /** Kills ffmpeg and resolves once it is gone (reaped): idempotent, at once if it had exited. */
  kill(): Promise<void>;
};

/** Starts one ffmpeg that encodes stereo float32 PCM at `sampleRate` into `file`. */
export function startEncoder(format: AudioFormat, sampleRate: number, file: string, label = file): Encoder {
  return spawnEncoder([...CODEC_ARGS[format], '-y', file], sampleRate, label, false);
}

/**
 * The same, the encoded bytes coming out on `stdout` as they are made (a pipe: nothing can be
 * rewritten at the end), deterministic (+bitexact): the same input gives the same bytes.
 */
export function startPipeEncoder(format: AudioFormat, sampleRate: number, label: string): Encoder & { stdout: Readable } {
  return spawnEncoder([...CODEC_ARGS[format], '-flags', '+bitexact', '-fflags', '+bitexact', 'pipe:1'], sampleRate, label, true) as Encoder & { stdout: Readable };
}

/**
 * A filter over raw PCM: `channels` planes of float32 at `sampleRate` in, the same layout out on
 * `stdout` after `filter` (an ffmpeg audio filter), as it is made.
 */
export function startPcmFilter(filter: string, sampleRate: number, channels: number, label: string): Encoder & { stdout: Readable } {
  return spawnEncoder(['-af', filter, '-f', 'f32le', '-c:a', 'pcm_f32le', '-ac', String(channels), 'pipe:1'], sampleRate, label, true, channels) as Encoder & { stdout: Readable };
}

/** One ffmpeg reading float32 PCM from stdin into `output`: the process handling every encoder shares. */
function spawnEncoder(output: string[], sampleRate: number, label: string, stdout: boolean, channels: number = CHANNELS): Encoder & { stdout?: Readable } {
  const p = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'f32le', '-ar', String(sampleRate), '-ac', String(channels), '-i', 'pipe:0', ...output], { stdio: ['pipe', stdout ? 'pipe' : 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  p.stdin!.on('error', () => {});
  let exitedFlag = false;
  const exited = new Promise<void>((res, rej) => {
    p.on('error', (err) => {
      exitedFlag = true;
      rej(new StemflowError('FFMPEG_MISSING', `ffmpeg could not run: ${err.message}`, { retryable: true }));
    });
    p.on('close', (code, signal) => {
      exitedFlag = true;
      if (code === 0) res();
      else rej(new Error(signal ? `ffmpeg encoding ${label} was stopped (${signal})` : `ffmpeg could not encode ${label}: ${stderr.trim().split('\n').pop()}`));
    });
  });
  exited.catch(() => {}); // observed through write/finish
  return {
    ...(stdout ? { stdout: p.stdout! } : {}),
    write: (bytes) =>
      // An encoder that died would never drain: its exit rejects the write instead.
      Promise.race([
        new Promise<void>((res) => (p.stdin!.write(bytes) ? res() : p.stdin!.once('drain', () => res()))),
        exited.then(() => {
          throw new Error(`ffmpeg for ${label} exited before its input ended`);
        }),
      ]),
    finish: async () => {
      p.stdin!.end();
      await exited;
    },
    kill: async () => {
      // 'exit', not 'close': the process is reaped even if nobody drains its stdout any more.
      if (exitedFlag || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((res) => p.once('exit', res));
      p.kill('SIGKILL');
      await gone;
    },
  };
}

/** The rates MP3 can be written at (MPEG-1, 2 and 2.5 layer III). */
const MP3_RATES = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/** The rate a file of `format` is written at for audio at `rate`: MP3 takes the nearest it has at or above, at most 48 kHz. */
export const rateFor = (format: AudioFormat, rate: number) => (format === 'mp3' && !MP3_RATES.includes(rate) ? (MP3_RATES.find((r) => r >= rate) ?? 48000) : rate);
