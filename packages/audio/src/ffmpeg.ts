/**
 * ffprobe and ffmpeg, spawned directly. fluent-ffmpeg (the design's first pick) is archived
 * upstream and wraps stdio in ways that get in the way of streaming, so this small module owns the
 * child processes: arguments as arrays (no shell), every stream's `error` handled, a deadline on
 * each run, and stderr kept for the reason a user reads.
 */
import { spawn } from 'node:child_process';
import { type Readable, Transform } from 'node:stream';
import { StemflowError } from '@stemflow/contracts';
import { HTDEMUCS } from '@stemflow/models/shape';
import { inputArgs, type MediaSource } from './media.js';

/** The PCM the decoder writes is what the model reads: its rate and channels, from its manifest. */
export const SAMPLE_RATE = HTDEMUCS.sampleRate;
export const CHANNELS = HTDEMUCS.channels;
export const BYTES_PER_FRAME = CHANNELS * 4;
/** ffmpeg's SoX resampler at its highest precision: how stemflow changes any audio's rate. */
export const resampleFilter = (rate: number) => `aresample=${rate}:resampler=soxr:precision=28`;

export type Probe = {
  formatName: string;
  /** Seconds, when the container or stream states it. */
  durationSec: number | undefined;
  audio: { codec: string; channels: number; sampleRate: number; durationSec: number | undefined; bits: number; float: boolean } | undefined;
  hasVideo: boolean;
};

type FfprobeJson = {
  format?: { format_name?: string; duration?: string };
  streams?: {
    codec_type?: string;
    codec_name?: string;
    channels?: number;
    sample_rate?: string;
    duration?: string;
    sample_fmt?: string;
    bits_per_sample?: number;
    bits_per_raw_sample?: string;
    disposition?: { attached_pic?: number };
  }[];
};

const num = (s: string | undefined) => (s !== undefined && Number.isFinite(Number(s)) ? Number(s) : undefined);

/** What ffmpeg's usual complaints mean, for a person. */
const PLAIN: [RegExp, string][] = [
  [/Invalid data found when processing input/i, 'its data is not in any format ffmpeg knows: it is damaged, or not audio'],
  [/could not find codec parameters|Could not find codec/i, 'its audio codec could not be identified'],
  [/moov atom not found/i, 'the MP4/M4A container is incomplete (no index): the file was cut off while being written'],
  [/End of file/i, 'it ends before its audio does: the file is cut off'],
];
/**
 * The last meaningful line ffmpeg printed, for a human reason: no path, URL or store address of
 * this server in it (the input is named `file:/…` or by a presigned URL), well-known complaints
 * said plainly.
 */
const lastLine = (stderr: string) => {
  const line =
    stderr
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop()
      ?.replace(/^\[[^\]]+\]\s*/, '') ?? '';
  const plain = PLAIN.find(([re]) => re.test(line));
  if (plain) return plain[1];
  const clean = line
    .split(/\s+/)
    .filter((w) => !w.includes('/') && !/^file:/i.test(w)) // a path or a URL (file:, http:, a presigned store URL)
    .join(' ')
    .replace(/^:\s*/, '')
    .trim();
  return clean || 'ffmpeg could not read it';
};

export async function probe(src: MediaSource, timeoutMs = 60_000): Promise<Probe> {
  const { stdout, stderr, code } = await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', ...inputArgs(src)], timeoutMs);
  if (code === null) throw new StemflowError('PROBE_TIMEOUT', `The file could not be read: looking into it took longer than ${Math.round(timeoutMs / 1000)} s.`);
  if (code !== 0) throw new StemflowError('NOT_AUDIO', `the file could not be read as audio or video (${lastLine(stderr)})`);
  const j = JSON.parse(stdout) as FfprobeJson;
  const a = j.streams?.find((s) => s.codec_type === 'audio');
  return {
    formatName: j.format?.format_name ?? 'unknown',
    durationSec: num(j.format?.duration) ?? num(a?.duration),
    audio: a
      ? {
          codec: a.codec_name ?? 'unknown',
          channels: a.channels ?? 0,
          sampleRate: Number(a.sample_rate ?? 0),
          durationSec: num(a.duration),
          // The stored precision: PCM states it per sample, lossless codecs per raw sample; 0 for lossy codecs.
          bits: a.bits_per_sample || Number(a.bits_per_raw_sample ?? 0) || 0,
          float: /^pcm_f/.test(a.codec_name ?? ''),
        }
      : undefined,
    hasVideo: !!j.streams?.some((s) => s.codec_type === 'video' && !s.disposition?.attached_pic),
  };
}

export type DecodeRun = {
  /** Interleaved stereo float32 little-endian at 44.1 kHz; errors with the reason when a limit stops the decode. */
  pcm: Readable;
  /** Resolves when ffmpeg exits: its status and what it said. */
  done: Promise<{ code: number | null; stderr: string }>;
  kill: () => void;
  /** Bytes of PCM produced so far. */
  outputBytes: () => number;
  /** With `native`: the same audio at the input's own rate (stereo f32le), and its bytes so far. */
  native?: { pcm: Readable; bytes: () => number };
};

/** Part of the input, in samples at its own rate: [start, end). */
export type DecodeWindow = { startSample: number; endSample?: number | undefined };

export type DecodeLimits = {
  /** Decoding stops (and `pcm` errors with `tooLong()`) as soon as more than this much audio came out. */
  maxSec: number;
  tooLong: () => StemflowError;
  /** The whole decode's deadline. */
  timeoutMs: number;
  /** ffmpeg producing nothing this long, while its output is being taken, counts as stalled. */
  stallMs: number;
  onProgress?: (sec: number) => void;
  /** The native output holds only this part of the input (the 44.1 kHz output is always whole). */
  window?: DecodeWindow | undefined;
  /** Also produce the audio at this rate (stereo f32le) on `native`: the stems' rate, when it is not 44.1 kHz. */
  nativeRate?: number | undefined;
};

/**
 * Decodes the first audio stream to 44.1 kHz stereo f32le: mono is duplicated, multichannel
 * downmixed by ffmpeg's standard matrix, other rates resampled with the SoX resampler. Limits are
 * enforced while it reads: past `maxSec` of output, the deadline, or a stall, ffmpeg is killed at
 * once and `pcm` errors with a StemflowError saying which.
 */
export function decodeToPcm(src: MediaSource, o: DecodeLimits): DecodeRun {
  // One graph: the window cut from the input at its own rate (exact samples), then split into
  // the model's 44.1 kHz and, when asked, the input's own rate.
  const trim = o.window ? [`atrim=start_sample=${o.window.startSample}${o.window.endSample !== undefined ? `:end_sample=${o.window.endSample}` : ''}`, 'asetpts=PTS-STARTPTS'] : [];
  const resample = resampleFilter(SAMPLE_RATE);
  const native = o.nativeRate !== undefined;
  const graph = native
    ? `[0:a:0]asplit=2[m][n0];[m]${resample}[r];[n0]${[...trim, resampleFilter(o.nativeRate!)].join(',')}[n]`
    : `[0:a:0]${resample}[r]`;
  const pcmOut = ['-ac', String(CHANNELS), '-f', 'f32le', '-c:a', 'pcm_f32le'];
  const args = [
    '-nostdin', '-v', 'error', '-progress', 'pipe:3', '-nostats',
    ...inputArgs(src),
    '-filter_complex', graph,
    '-map', '[r]', '-vn', '-sn', '-dn', ...pcmOut, '-ar', String(SAMPLE_RATE), 'pipe:1',
    ...(native ? ['-map', '[n]', ...pcmOut, '-ar', String(o.nativeRate), 'pipe:4'] : []),
  ];
  const p = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', native ? 'pipe' : 'ignore'] });
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
      if (m) o.onProgress?.(Number(m[1]) / 1e6);
    }
  });
  progress.on('error', () => {});

  const maxBytes = Math.ceil(o.maxSec * SAMPLE_RATE) * BYTES_PER_FRAME;
  let bytes = 0;
  let lastOutput = Date.now();
  const pcm = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      lastOutput = Date.now();
      bytes += chunk.length;
      if (bytes > maxBytes) return cb(stop(o.tooLong()));
      cb(null, chunk);
    },
  });
  const stop = (err: StemflowError) => {
    p.kill('SIGKILL');
    clearInterval(watch);
    return err;
  };
  const t0 = Date.now();
  const watch = setInterval(() => {
    const now = Date.now();
    if (now - t0 > o.timeoutMs) pcm.destroy(stop(new StemflowError('DECODE_TIMEOUT', `Decoding took longer than ${Math.round(o.timeoutMs / 1000)} s and was stopped; the file may be damaged.`)));
    // A consumer that is slow to take the output is not ffmpeg stalling.
    else if (now - lastOutput > o.stallMs && !pcm.writableNeedDrain && !nativePcm?.writableNeedDrain) {
      pcm.destroy(stop(new StemflowError('DECODE_STALLED', `Decoding stopped making progress for ${Math.round(o.stallMs / 1000)} s.`, { retryable: true })));
    }
  }, Math.min(1000, o.stallMs / 4));
  p.stdout!.on('error', (err) => pcm.destroy(err));
  p.stdout!.pipe(pcm);
  let nativeBytes = 0;
  const nativeOut = native ? (p.stdio[4] as Readable) : undefined;
  const nativePcm = nativeOut
    ? nativeOut.pipe(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            lastOutput = Date.now();
            nativeBytes += chunk.length;
            cb(null, chunk);
          },
        }),
      )
    : undefined;
  nativeOut?.on('error', (err) => nativePcm?.destroy(err));
  // A limit that stops the decode ends the native copy with the same reason.
  pcm.on('error', (err) => nativePcm?.destroy(err));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    p.on('error', (err) => resolve({ code: -1, stderr: `${stderr}\n${err.message}` }));
    p.on('close', (code) => resolve({ code, stderr }));
  }).finally(() => clearInterval(watch));
  return { pcm, done, kill: () => void stop(new StemflowError('DECODE_KILLED', 'killed')), outputBytes: () => bytes, ...(nativePcm ? { native: { pcm: nativePcm, bytes: () => nativeBytes } } : {}) };
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

export type FfmpegVersions = { ffmpeg: string; ffprobe: string };
const INSTALL_HINT = 'install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg) and put ffmpeg and ffprobe on PATH';

/**
 * The versions of ffmpeg and ffprobe on PATH; FFMPEG_MISSING naming what is missing and how to
 * install it. Processes that decode or encode call it at start, so a machine without ffmpeg stops
 * at once with one line instead of failing its first job after minutes of retries.
 */
export async function ffmpegVersions(): Promise<FfmpegVersions> {
  const version = async (cmd: 'ffmpeg' | 'ffprobe') => {
    const r = await run(cmd, ['-hide_banner', '-version'], 10_000).catch(() => undefined);
    const v = r?.code === 0 ? /version (\S+)/.exec(r.stdout)?.[1] : undefined;
    return v;
  };
  const [ffmpeg, ffprobe] = await Promise.all([version('ffmpeg'), version('ffprobe')]);
  const missing = [ffmpeg ? undefined : 'ffmpeg', ffprobe ? undefined : 'ffprobe'].filter(Boolean);
  if (missing.length) throw new StemflowError('FFMPEG_MISSING', `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed or not on PATH: ${INSTALL_HINT}`);
  return { ffmpeg: ffmpeg!, ffprobe: ffprobe! };
}
