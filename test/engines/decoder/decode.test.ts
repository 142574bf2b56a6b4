/**
 * The decoder on the real S3 server and ffmpeg: every common format decodes to 44.1 kHz stereo
 * float PCM of the right length and pitch; every bad input fails its job with a human reason.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemoryBus, newEvent, type Cancellations } from '@stemflow/bus';
import { EVENT_NAMES, QUEUES, type EventOf, type QueueSpec, objectKeys } from '@stemflow/contracts';
import { decodeJob, startDecoder } from '@stemflow/decoder';
import { MonoStats } from '@stemflow/models/shape';
import { S3BlobStore } from '@stemflow/storage';
import { readAll } from '@stemflow/storage/contract';
import { createLogger } from '@stemflow/telemetry';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffconcat, ffmpeg, ffmpegFile, hlsPlaylist, id3Wrapped, lyingFlac } from '../../support/audio.js';
import { engineEnv, eventually, unique } from '../../support/env.js';

const bucket = unique('dec').toLowerCase();
let blobs: S3BlobStore;
let bus: InMemoryBus;
const published: { type: string; jobId: string; payload: unknown }[] = [];
const watch: QueueSpec = { ...QUEUES.status, name: 'watch', singleActiveConsumer: false };

beforeAll(async () => {
  blobs = new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket });
  bus = new InMemoryBus({ queues: [watch] });
  const all: Record<string, (e: { type: string; jobId: string; payload: unknown }) => Promise<void>> = {};
  for (const n of EVENT_NAMES) all[n] = async (e) => void published.push(e);
  await bus.subscribe(watch, all as never);
});
afterAll(async () => {
  await bus.close();
  await blobs.deletePrefix('');
});

const canceled = new Set<string>();
const cancels: Cancellations = { seen: (id) => canceled.has(id), isCanceled: async (id) => canceled.has(id), close: async () => {} };
const deps = () => ({ bus, blobs, log: createLogger('decoder', 'silent'), cancels });

async function upload(name: string, data: Buffer): Promise<EventOf<'job.created'>> {
  const id = uuidv7();
  const key = objectKeys.input(id);
  await blobs.put(key, data);
  return newEvent('job.created', id, {
    input: { key, filename: name, size: data.length, content_type: 'application/octet-stream', sha256: createHash('sha256').update(data).digest('hex') },
    options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
    owner: null,
  });
}

/** A 440 Hz tone (1 kHz on the right when stereo), encoded by ffmpeg in the given way. */
const gen = (sec: number, rate: number, channels: number, encode: string[], extraInputs: string[] = []) => {
  const fmt = encode[encode.indexOf('-f') + 1]!;
  const ext = ({ ipod: 'm4a', ogg: 'ogg' } as Record<string, string>)[fmt] ?? fmt;
  return ffmpegFile(['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${rate}:duration=${sec}`, ...extraInputs, '-ac', String(channels), ...encode], ext);
};

async function decodedPcm(e: EventOf<'job.created'>) {
  await decodeJob(deps(), e, { maxDurationSec: 60 });
  const ev = published.find((p) => p.type === 'job.decoded' && p.jobId === e.jobId) as EventOf<'job.decoded'> | undefined;
  expect(ev).toBeDefined();
  const bytes = await readAll(await blobs.get(ev!.payload.pcmKey));
  return { ev: ev!, pcm: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
}

/** Zero crossings of the left channel over the middle second → its frequency. */
function pitch(pcm: Float32Array): number {
  const frames = pcm.length / 2;
  const from = Math.floor(frames / 2 - 22050);
  let c = 0;
  for (let i = from + 1; i < from + 44100; i++) if ((pcm[2 * (i - 1)]! < 0) !== (pcm[2 * i]! < 0)) c++;
  return c / 2;
}

describe('decoding every common format', () => {
  const SEC = 3;
  const cases: [string, string, () => Promise<Buffer>, number][] = [
    ['wav 16-bit', 'a.wav', () => gen(SEC, 44100, 2, ['-c:a', 'pcm_s16le', '-f', 'wav']), 0],
    ['wav 24-bit', 'a.wav', () => gen(SEC, 44100, 2, ['-c:a', 'pcm_s24le', '-f', 'wav']), 0],
    ['wav 32-bit float', 'a.wav', () => gen(SEC, 44100, 2, ['-c:a', 'pcm_f32le', '-f', 'wav']), 0],
    ['flac', 'a.flac', () => gen(SEC, 44100, 2, ['-c:a', 'flac', '-f', 'flac']), 0],
    ['mono wav', 'mono.wav', () => gen(SEC, 44100, 1, ['-c:a', 'pcm_s16le', '-f', 'wav']), 0],
    ['48 kHz wav', 'a48.wav', () => gen(SEC, 48000, 2, ['-c:a', 'pcm_s16le', '-f', 'wav']), 1],
    ['5.1 flac', 'surround.flac', () => gen(SEC, 48000, 6, ['-c:a', 'flac', '-f', 'flac']), 1],
    ['mp3', 'a.mp3', () => gen(SEC, 44100, 2, ['-c:a', 'libmp3lame', '-b:a', '192k', '-f', 'mp3']), 1],
    ['ogg opus', 'a.opus', () => gen(SEC, 48000, 2, ['-c:a', 'libopus', '-b:a', '128k', '-f', 'ogg']), 1],
    ['ogg vorbis', 'a.ogg', () => gen(SEC, 44100, 2, ['-c:a', 'libvorbis', '-f', 'ogg']), 1],
    // AAC: the encoder pads the last 1024-sample frame and the mp4 edit list trims only the start.
    ['m4a aac', 'a.m4a', () => gen(SEC, 44100, 2, ['-c:a', 'aac', '-b:a', '192k', '-f', 'ipod']), 1024],
    ['video with audio (mp4, index at the end)', 'clip.mp4', () => gen(SEC, 44100, 2, ['-map', '1:v', '-map', '0:a', '-c:v', 'mpeg4', '-c:a', 'aac', '-shortest', '-f', 'mp4'], ['-f', 'lavfi', '-i', `color=c=blue:s=64x64:d=${SEC}`]), 1024],
  ];

  it.each(cases)('%s → 44.1 kHz stereo f32, right length, tone kept', async (_name, file, make, tolerance) => {
    const e = await upload(file, await make());
    const { ev, pcm } = await decodedPcm(e);
    expect(ev.payload).toMatchObject({ sampleRate: 44100, channels: 2, pcmKey: `jobs/${e.jobId}/pcm/mix.f32`, options: e.payload.options });
    expect(pcm.length).toBe(ev.payload.frames * 2);
    // Exact for PCM and FLAC, ±1 frame through a resampler; lossy codecs are trimmed by their
    // own gapless info (mp3 LAME header, opus pre-skip), AAC keeps its last frame's padding.
    expect(Math.abs(ev.payload.frames - SEC * 44100)).toBeLessThanOrEqual(tolerance);
    expect(pitch(pcm)).toBeGreaterThan(436);
    expect(pitch(pcm)).toBeLessThan(444);
    // Stereo from any layout: both channels carry the tone.
    const mid = Math.floor(pcm.length / 4) * 2;
    let l = 0, r = 0;
    for (let i = mid; i < mid + 8820; i += 2) { l += pcm[i]! ** 2; r += pcm[i + 1]! ** 2; }
    expect(r / l).toBeGreaterThan(0.5);
    expect(r / l).toBeLessThan(2);
  });

  it('a redelivered job.created announces the complete PCM again without decoding', async () => {
    const e = await upload('again.flac', await gen(1, 44100, 2, ['-c:a', 'flac', '-f', 'flac']));
    await decodeJob(deps(), e, { maxDurationSec: 60 });
    const before = (await blobs.head(objectKeys.pcm(e.jobId)))!;
    await blobs.delete(e.payload.input!.key); // decoding again would now fail
    await decodeJob(deps(), e, { maxDurationSec: 60 });
    expect(published.filter((p) => p.type === 'job.decoded' && p.jobId === e.jobId)).toHaveLength(2);
    expect((await blobs.head(objectKeys.pcm(e.jobId)))?.size).toBe(before.size);
  });
});

/** Another job's input: what a crafted playlist would point ffmpeg at (a presigned URL). */
let victimUrl = '';
beforeAll(async () => {
  const victim = await upload('victim.mp3', await gen(3, 44100, 2, ['-c:a', 'libmp3lame', '-f', 'mp3']));
  victimUrl = await blobs.sourceUrl(victim.payload.input!.key);
});
describe('bad inputs fail the job with a reason a user understands', () => {
  const mp3 = () => gen(20, 44100, 2, ['-c:a', 'libmp3lame', '-b:a', '128k', '-f', 'mp3']);
  const cases: [string, string, () => Promise<Buffer>, string, RegExp][] = [
    ['a text file renamed .mp3', 'song.mp3', async () => Buffer.from('Dear diary, today I wrote no music.\n'.repeat(100)), 'UNSUPPORTED_MEDIA_TYPE', /^The file is not audio or video/],
    ['a zero-byte file', 'empty.wav', async () => Buffer.alloc(0), 'EMPTY_FILE', /^The file is empty\.$/],
    ['an HLS playlist behind an ID3 tag, pointing at another file', 'evil.mp3', async () => id3Wrapped(hlsPlaylist(victimUrl)), 'NOT_AUDIO', /could not be read as audio/],
    ['an ffconcat script behind an ID3 tag', 'evil.mp3', async () => id3Wrapped(ffconcat(victimUrl)), 'NOT_AUDIO', /could not be read as audio/],
    ['a MIDI file (sniffed, but not a format this server decodes)', 'song.mid', async () => Buffer.concat([Buffer.from('4d546864000000060000000100604d54726b0000000400ff2f00', 'hex')]), 'UNSUPPORTED_MEDIA_TYPE', /^The file is audio\/midi \(mid\), which this server does not decode\.$/],
    ['50 s with shifts=10 and overlap=0.9 (over a budget of 300 model runs)', 'costly.flac', () => gen(50, 8000, 1, ['-c:a', 'flac', '-f', 'flac']), 'COST_LIMIT', /^The job is too costly: separating 0:50 of audio with shifts 10 and overlap 0\.9 would take 560 model runs; this server allows at most 300 per job/],
    ['a FLAC whose header says 0:10 but holds 1:10', 'liar.flac', async () => lyingFlac(await gen(70, 8000, 1, ['-c:a', 'flac', '-f', 'flac']), 10), 'TOO_LONG', /^The audio is longer than this server accepts \(1:00\); decoding stopped there\.$/],
    ['a video without audio', 'silent.mp4', () => ffmpeg(['-f', 'lavfi', '-i', 'color=c=red:s=64x64:d=2', '-c:v', 'mpeg4', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov', '-']), 'NO_AUDIO_STREAM', /^The video has no audio track\.$/],
    ['an over-long input', 'long.flac', () => gen(70, 8000, 1, ['-c:a', 'flac', '-f', 'flac']), 'TOO_LONG', /^The audio is 1:10 long; this server accepts at most 1:00\.$/],
    ['a 0:20 file with 0:12 of the key\'s daily minutes left', 'quota.flac', () => gen(20, 8000, 1, ['-c:a', 'flac', '-f', 'flac']), 'QUOTA_EXCEEDED', /^The audio is 0:20 long; this API key had 0:12 of its 30 audio minutes left for today \(UTC\) when the job was submitted\.$/],
    ['a FLAC whose header says 0:05 but holds 0:40, with 0:12 left', 'quota-liar.flac', async () => lyingFlac(await gen(40, 8000, 1, ['-c:a', 'flac', '-f', 'flac']), 5), 'QUOTA_EXCEEDED', /^The audio is longer than 0:12; decoding stopped there; this API key had 0:12 of its 30 audio minutes left/],
  ];

  it.each(cases)('%s → %s', async (what, name, make, code, reason) => {
    const e = await upload(name, await make());
    const costly = what.startsWith('50 s');
    if (costly) e.payload.options = { ...e.payload.options, shifts: 10, overlap: 0.9 };
    if (name.startsWith('quota')) e.payload.quota = { audioSecLeft: 12, minutesPerDay: 30 };
    const err = await decodeJob(deps(), e, { maxDurationSec: 60, ...(costly ? { maxModelRuns: 300 } : {}) }).then(() => undefined, (x: unknown) => x);
    expect(err).toMatchObject({ code, retryable: false });
    expect((err as Error).message).toMatch(reason);
    expect(await blobs.head(objectKeys.pcm(e.jobId))).toBeUndefined();
  });

  it('a header that claims more than the file holds refuses nothing: a FLAC that says 10 hours and holds 3 s, and an mp3 cut off, decode what they hold', async () => {
    for (const [name, data, sec] of [
      ['liar.flac', lyingFlac(await gen(3, 8000, 1, ['-c:a', 'flac', '-f', 'flac']), 36_000), 3],
      ['cut.mp3', (await mp3()).subarray(0, 100_000), 6.2],
    ] as const) {
      const e = await upload(name, data);
      const { ev } = await decodedPcm(e);
      expect(ev.payload.durationSec, name).toBeCloseTo(sec, 0);
    }
  });

  it('through the bus: the job gets job.failed with the reason, stage decoding', async () => {
    const q: QueueSpec = { ...QUEUES.decoder, name: 'decoder-test' };
    bus.declare(q);
    const svc = await startDecoder({ bus, blobs, log: createLogger('decoder', 'silent') }, { maxDurationSec: 60 }, q);
    const e = await upload('notes.mp3', Buffer.from('not audio at all '.repeat(300)));
    await bus.publish(e);
    const f = await eventually(() => published.find((p) => p.type === 'job.failed' && p.jobId === e.jobId), { what: 'job.failed' });
    expect(f.payload).toMatchObject({ stage: 'decoding', code: 'UNSUPPORTED_MEDIA_TYPE', retryable: false });
    await svc.stop();
  });

  it('skips a canceled job', async () => {
    const e = await upload('c.flac', await gen(1, 44100, 2, ['-c:a', 'flac', '-f', 'flac']));
    canceled.add(e.jobId);
    await decodeJob(deps(), e, { maxDurationSec: 60 });
    expect(await blobs.head(objectKeys.pcm(e.jobId))).toBeUndefined();
  });
});

describe('the stems\' shape: their rate, exact length and format, and a preview window', () => {
  /** Stereo noise at `rate` as 24-bit WAV: every sample different, so a window off by one shows. */
  const noise = (sec: number, rate: number, codec = 'pcm_s24le') => ffmpegFile(['-f', 'lavfi', '-i', `anoisesrc=sample_rate=${rate}:duration=${sec}:amplitude=0.5:seed=3`, '-ac', '2', '-c:a', codec, '-f', 'wav'], 'wav');
  const f32 = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const withOptions = async (data: Buffer, o: Partial<EventOf<'job.created'>['payload']['options']>) => {
    const e = await upload('song.wav', data);
    e.payload.options = { ...e.payload.options, ...o };
    return e;
  };

  it('a 48 kHz 24-bit input: the stems are 48 kHz, exactly its length, and `wav` means 24-bit; its own-rate audio is kept for the residual', async () => {
    const input = await noise(3, 48_000);
    const e = await withOptions(input, { format: 'wav' });
    const { ev, pcm } = await decodedPcm(e);
    expect(ev.payload.output).toEqual({ sampleRate: 48_000, frames: 144_000, format: 'wav24', nativeKey: objectKeys.nativePcm(e.jobId) });
    // The normalization measured while decoding: what the separator would measure from the PCM, to the bit.
    const stats = new MonoStats();
    stats.add(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    expect(ev.payload.stats).toEqual(stats.result());
    const native = f32(await readAll(await blobs.get(objectKeys.nativePcm(e.jobId))));
    const original = f32(await ffmpeg(['-i', 'pipe:0', '-f', 'f32le', '-'], input));
    expect(native).toEqual(original);
  });

  it('44100 asked: no second copy, the model\'s PCM is the stems\' mix', async () => {
    const e = await withOptions(await noise(2, 22_050, 'pcm_s16le'), { sample_rate: '44100' });
    const { ev } = await decodedPcm(e);
    expect(ev.payload.output).toEqual({ sampleRate: 44_100, frames: ev.payload.frames, format: 'wav16' });
    expect(await blobs.head(objectKeys.nativePcm(e.jobId))).toBeUndefined();
  });

  it('a 22.05 kHz input keeps its rate; MP3 stems of a 96 kHz input are 48 kHz (the most MP3 has)', async () => {
    const { ev } = await decodedPcm(await withOptions(await noise(2, 22_050, 'pcm_s16le'), { format: 'wav' }));
    expect(ev.payload.output).toMatchObject({ sampleRate: 22_050, frames: 44_100, format: 'wav16' });
    const { ev: ev96 } = await decodedPcm(await withOptions(await noise(1, 96_000), { format: 'mp3' }));
    expect(ev96.payload.output).toMatchObject({ sampleRate: 48_000, frames: 48_000, format: 'mp3' });
  });

  it('a preview window: exactly those samples of the input, and only they are counted', async () => {
    const input = await noise(10, 48_000);
    const e = await withOptions(input, { start: 2.5, duration: 3 });
    const { ev, pcm } = await decodedPcm(e);
    expect(ev.payload.output).toMatchObject({ sampleRate: 48_000, frames: 144_000 });
    // The model's PCM: the window and a model segment (343,980 frames) either side, within the track,
    // with the whole track's length and normalization.
    expect(ev.payload.window).toMatchObject({ trackFrames: 441_000, storedFrom: 0, from: 110_250, to: 242_550 });
    expect(ev.payload.stats!.std).toBeGreaterThan(0.1);
    expect(ev.payload.frames).toBe(441_000);
    expect(pcm.length).toBe(2 * ev.payload.frames);
    expect(ev.payload.durationSec).toBeCloseTo(3, 2);
    const late = await decodedPcm(await withOptions(await noise(20, 44_100), { start: 15, duration: 2 }));
    expect(late.ev.payload.window).toMatchObject({ trackFrames: 882_000, storedFrom: 15 * 44_100 - 343_980, from: 15 * 44_100, to: 17 * 44_100 });
    expect(late.ev.payload.frames).toBe(882_000 - (15 * 44_100 - 343_980));
    const native = f32(await readAll(await blobs.get(objectKeys.nativePcm(e.jobId))));
    const original = f32(await ffmpeg(['-i', 'pipe:0', '-f', 'f32le', '-'], input));
    expect(native).toEqual(original.subarray(2 * 120_000, 2 * 264_000));
    // A window that runs past the end ends with the input.
    const { ev: tail } = await decodedPcm(await withOptions(input, { start: 8, duration: 30 }));
    expect(tail.payload.output).toMatchObject({ frames: 96_000 });
  });

  it('a window that starts after the end fails the job with the reason', async () => {
    const e = await withOptions(await noise(3, 44_100), { start: 300 });
    const err = await decodeJob(deps(), e, { maxDurationSec: 60 }).then(() => undefined, (x: unknown) => x);
    expect(err).toMatchObject({ code: 'WINDOW_OUTSIDE', retryable: false });
    expect((err as Error).message).toBe('The preview starts at 5:00, after the end of the 0:03 of audio in the file.');
  });
});
