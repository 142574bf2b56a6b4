/**
 * ffprobe and ffmpeg, spawned directly. fluent-ffmpeg (the design's first pick) is archived
 * upstream and wraps stdio in ways that get in the way of streaming, so this small module owns the
 * child processes: arguments as arrays (no shell), every stream's `error` handled, a deadline on
 * each run, and stderr kept for the reason a user reads.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { StemflowError } from '@stemflow/contracts';

export const SAMPLE_RATE = 44100;
export const CHANNELS = 2;
export const BYTES_PER_FRAME = CHANNELS * 4;

export type Probe = {
  formatName: string;
  /** Seconds, when the container or stream states it. */
  durationSec: number | undefined;
  audio: { codec: string; channels: number; sampleRate: number; durationSec: number | undefined } | undefined;
  hasVideo: boolean;
};

type FfprobeJson = {
  format?: { format_name?: string; duration?: string };
  streams?: { codec_type?: string; codec_name?: string; channels?: number; sample_rate?: string; duration?: string; disposition?: { attached_pic?: number } }[];
};

const num = (s: string | undefined) => (s !== undefined && Number.isFinite(Number(s)) ? Number(s) : undefined);

/** The last meaningful line ffmpeg printed, for a human reason. */
const lastLine = (stderr: string) =>
  stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .pop()
    ?.replace(/^\[[^\]]+\]\s*/, '')
    .replace(/^(https?:\/\/|\/)\S+:\s*/, '') ?? 'unknown error';

export async function probe(source: string, timeoutMs = 60_000): Promise<Probe> {
  const { stdout, stderr, code } = await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', source], timeoutMs);
  if (code !== 0) throw new StemflowError('NOT_AUDIO', `the file could not be read as audio or video (${lastLine(stderr)})`);
  const j = JSON.parse(stdout) as FfprobeJson;
  const a = j.streams?.find((s) => s.codec_type === 'audio');
  return {
    formatName: j.format?.format_name ?? 'unknown',
    durationSec: num(j.format?.duration) ?? num(a?.duration),
    audio: a ? { codec: a.codec_name ?? 'unknown', channels: a.channels ?? 0, sampleRate: Number(a.sample_rate ?? 0), durationSec: num(a.duration) } : undefined,
    hasVideo: !!j.streams?.some((s) => s.codec_type === 'video' && !s.disposition?.attached_pic),
  };
}

export type DecodeRun = {
  /** Interleaved stereo float32 little-endian at 44.1 kHz. */
  pcm: Readable;
  /** Resolves when ffmpeg exits: its status and what it said. */
  done: Promise<{ code: number | null; stderr: string }>;
  kill: () => void;
};

/**
 * Decodes the first audio stream to 44.1 kHz stereo f32le: mono is duplicated, multichannel
 * downmixed by ffmpeg's standard matrix, other rates resampled with the SoX resampler.
 * `onProgress` gets decoded seconds as ffmpeg reports them. At most `maxSec` are decoded.
 */
export function decodeToPcm(source: string, opts: { maxSec: number; onProgress?: (sec: number) => void }): DecodeRun {
  const args = [
    '-nostdin', '-v', 'error', '-progress', 'pipe:3', '-nostats',
    '-i', source,
    '-map', '0:a:0', '-vn', '-sn', '-dn',
    '-t', String(opts.maxSec),
    '-af', `aresample=${SAMPLE_RATE}:resampler=soxr:precision=28`,
    '-ac', String(CHANNELS), '-ar', String(SAMPLE_RATE),
    '-f', 'f32le', '-c:a', 'pcm_f32le', 'pipe:1',
  ];
  const p = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const progress = p.stdio[3] as Readable;
  let buf = '';
  progress.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const m = /^out_time_us=(\d+)/.exec(l);
      if (m) opts.onProgress?.(Number(m[1]) / 1e6);
    }
  });
  progress.on('error', () => {});
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    p.on('error', (err) => resolve({ code: -1, stderr: `${stderr}\n${err.message}` }));
    p.on('close', (code) => resolve({ code, stderr }));
  });
  return { pcm: p.stdout!, done, kill: () => p.kill('SIGKILL') };
}

export { lastLine };

/** Runs a command to completion with a deadline, collecting its output. */
export function run(cmd: string, args: string[], timeoutMs: number, input?: Buffer): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    p.on('error', (err) => {
      clearTimeout(t);
      reject(new StemflowError('FFMPEG_MISSING', `${cmd} could not run: ${err.message}`, { retryable: true }));
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ stdout, stderr, code });
    });
    if (input) p.stdin!.end(input);
  });
}
