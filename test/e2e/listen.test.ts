/**
 * Listening while a job separates (the real model, the embedded process): stems streamed as they
 * are made equal the finished stems, whoever joins when; stems at the input's own rate and exact
 * length; the residual option makes them add up to the mix; a preview window is the full
 * separation's window.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffmpeg } from '../support/audio.js';
import { eventually } from '../support/env.js';
import { decodedF32, followSse, mixtureWav, uploadJob } from '../support/jobs-http.js';
import { ServiceProcess } from '../support/processes.js';

const port = 19_500 + (process.pid % 400);
const api = `http://127.0.0.1:${port}`;
let app: ServiceProcess;
let song: { wav: Buffer; frames: number };

type JobBody = {
  status: string;
  ready_sec: number;
  live_stems: { name: string; url: string; format: string }[];
  stems: { name: string; url: string; format: string }[];
  report: { sample_rate: number; frames: number; residual_db: number; stems: { name: string; peak: number; peak_db: number; gain: number }[] } | null;
  error_message: string | null;
};
const getJob = async (id: string) => (await (await fetch(`${api}/api/jobs/${id}`)).json()) as JobBody;

/** A stem fetched from `url`: its bytes, when the first of them came, and the job's status then. */
async function fetchStem(url: string, id: string) {
  const res = await fetch(`${api}${url}`);
  // (Not res.clone().text(): that would wait for the whole stem before the first chunk is looked at.)
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  const chunks: Buffer[] = [];
  let first: { at: number; status: string } | undefined;
  for await (const c of res.body as AsyncIterable<Uint8Array>) {
    if (!first) first = { at: Date.now(), status: (await getJob(id)).status };
    chunks.push(Buffer.from(c));
  }
  return { bytes: Buffer.concat(chunks), live: res.headers.get('x-stemflow-live') === 'true', first: first!, length: res.headers.get('content-length') };
}

/** The song resampled and cut to an odd length: `rate`, `codec`, and its exact frame count. */
async function songAt(rate: number, codec: string, frames: number) {
  const wav = await ffmpeg(['-i', 'pipe:0', '-af', `aresample=${rate}:resampler=soxr,atrim=end_sample=${frames}`, '-c:a', codec, '-f', 'wav', '-'], song.wav);
  return wav;
}

const stereoSnrDb = (ref: Float32Array, got: Float32Array) => {
  let s = 0, e = 0;
  for (let i = 0; i < ref.length; i++) {
    s += ref[i]! ** 2;
    e += (ref[i]! - (got[i] ?? 0)) ** 2;
  }
  return 10 * Math.log10(s / e);
};

beforeAll(async () => {
  const data = mkdtempSync(join(tmpdir(), 'listen-'));
  app = new ServiceProcess('all-in-one', { AMQP_URL: '', S3_ENDPOINT: '', DATABASE_URL: '', STORAGE_ROOT: data, OTEL_SDK_DISABLED: 'true', HOST: '127.0.0.1', LOG_LEVEL: 'info' }, port);
  song = await mixtureWav(30);
  await app.start();
}, 120_000);

afterAll(async () => {
  await app?.kill('SIGTERM');
});

describe('listening while it separates', () => {
  it('a 48 kHz 24-bit song: stems stream while the job runs, equal the finished stems, at 48 kHz and exact length, and add up to the mix', async () => {
    const frames = 48_000 * 30 - 1_234; // not a whole number of anything
    const input = await songAt(48_000, 'pcm_s24le', frames);
    const id = await uploadJob(api, { name: 'song 48k.wav', data: input }, { clip: 'clamp', format: 'wav', residual: 'true' });
    const sse: Promise<{ events: { event: string; data: JobBody }[]; at: number }> = followSse(api, id).then((events) => ({ events, at: Date.now() }));

    // A client from the start: every stem, as soon as the job lists them.
    const live = await eventually(async () => ((await getJob(id)).live_stems.length ? (await getJob(id)).live_stems : undefined), { timeoutMs: 60_000, what: 'live stems' });
    expect(live.map((s) => [s.name, s.format])).toEqual(['drums', 'bass', 'other', 'vocals'].map((n) => [n, 'wav24']));
    const early = Promise.all(live.map((s) => fetchStem(s.url, id)));
    // A client that joins late: once some seconds are ready, while the job still runs.
    const late = await eventually(async () => {
      const j = await getJob(id);
      return j.status === 'processing' && j.ready_sec >= 5 ? j : undefined;
    }, { timeoutMs: 120_000, what: 'five seconds ready' }).then(() => fetchStem(live[3]!.url, id));
    const { events, at: completedAt } = await sse;
    expect(events.at(-1)!.event).toBe('completed');
    const streamed = await early;

    // Heard before the end: the first bytes of every stem came while the job was processing.
    for (const s of streamed) {
      expect(s.live).toBe(true);
      expect(s.first.status).toBe('processing');
      expect(s.first.at).toBeLessThan(completedAt);
    }
    expect(late.live).toBe(true);
    // SSE told how much was ready, growing.
    const ready = events.map((e) => e.data.ready_sec);
    expect(ready).toEqual([...ready].sort((a, b) => a - b));
    expect(ready.some((r) => r > 0 && r < 30)).toBe(true);

    // The finished stems are the bytes the early and late clients got.
    const job = await getJob(id);
    const finished = await Promise.all(job.stems.map((s) => fetchStem(s.url, id)));
    finished.forEach((f, k) => expect(f.bytes.equals(streamed[k]!.bytes), job.stems[k]!.name).toBe(true));
    expect(late.bytes.equals(finished[3]!.bytes)).toBe(true);
    expect(Number(streamed[0]!.length)).toBe(finished[0]!.bytes.length);

    // The input's rate and exact length, 24-bit like the input.
    const mix = decodedF32(input);
    expect(mix.length / 2).toBe(frames);
    const stems = finished.map((f) => decodedF32(f.bytes));
    for (const [k, s] of stems.entries()) expect(s.length / 2, job.stems[k]!.name).toBe(frames);
    expect(finished[0]!.bytes.readUInt32LE(24)).toBe(48_000);
    expect(finished[0]!.bytes.readUInt16LE(34)).toBe(24);

    // The stems add up to the mix.
    const sum = new Float32Array(mix.length);
    for (const s of stems) for (let i = 0; i < sum.length; i++) sum[i]! += s[i]!;
    expect(stereoSnrDb(mix, sum)).toBeGreaterThan(90);
    expect(job.report!.residual_db).toBeLessThan(-90);
    expect(job.report!.sample_rate).toBe(48_000);
    expect(job.report!.frames).toBe(frames);
    expect(job.report!.stems.map((s) => s.name)).toEqual(['drums', 'bass', 'other', 'vocals']);
    for (const s of job.report!.stems) {
      expect(s.gain).toBe(1);
      expect(s.peak).toBeGreaterThan(0.01);
      expect(s.peak_db).toBeCloseTo(20 * Math.log10(s.peak), 1);
    }
  }, 400_000);

  it('a 22.05 kHz song as FLAC: streamed from the start, the same samples as the finished stem, at 22.05 kHz and exact length', async () => {
    const frames = 22_050 * 12 + 77;
    const input = await songAt(22_050, 'pcm_s16le', frames);
    const id = await uploadJob(api, { name: 'song 22k.wav', data: input }, { clip: 'clamp', format: 'flac', stems: 'vocals,other' });
    const live = await eventually(async () => ((await getJob(id)).live_stems.length ? (await getJob(id)).live_stems : undefined), { timeoutMs: 60_000, what: 'live stems' });
    const streamed = await fetchStem(live[0]!.url, id);
    expect(streamed.live).toBe(true);
    expect(streamed.length).toBeNull(); // FLAC's length in bytes is not known before the end
    await eventually(async () => (await getJob(id)).status === 'completed' || undefined, { timeoutMs: 120_000, what: 'completed' });
    const job = await getJob(id);
    const finished = await fetchStem(job.stems[0]!.url, id);
    const a = decodedF32(streamed.bytes);
    const b = decodedF32(finished.bytes);
    expect(a.length / 2).toBe(frames);
    expect(b).toEqual(a);
    expect(finished.bytes.equals(streamed.bytes)).toBe(true);
    expect(job.report).toMatchObject({ sample_rate: 22_050, frames });
  }, 300_000);

  it('a preview of 30 s from 1:00 is the full separation\'s 1:00–1:30, sample for sample, for the runs that touch it', async () => {
    const long = await mixtureWav(95);
    const opts = { clip: 'clamp', format: 'f32' };
    const full = await uploadJob(api, { name: 'long.wav', data: long.wav }, opts);
    const preview = await uploadJob(api, { name: 'long.wav', data: long.wav }, { ...opts, start: '60', duration: '30' });
    const done = async (id: string) => {
      const events = await followSse(api, id);
      expect(events.at(-1)!.event, JSON.stringify(events.at(-1)!.data)).toBe('completed');
      const job = await getJob(id);
      return Promise.all(job.stems.map(async (s) => decodedF32((await fetchStem(s.url, id)).bytes)));
    };
    const [whole, part] = [await done(full), await done(preview)];
    const SR = 44_100;
    for (const [k, name] of ['drums', 'bass', 'other', 'vocals'].entries()) {
      expect(part[k]!.length, name).toBe(2 * 30 * SR);
      const ref = whole[k]!.subarray(2 * 60 * SR, 2 * 90 * SR);
      // The same chunks on the same samples with the same normalization: equal but for float rounding.
      expect(stereoSnrDb(ref, part[k]!), name).toBeGreaterThan(100);
    }
    const runs = (id: string) => app.log.split('\n').filter((l) => l.includes(id) && l.includes('"msg":"separated"')).map((l) => (JSON.parse(l) as { chunks: number }).chunks)[0];
    // (Logged just after job.completed is published.)
    expect(await eventually(() => runs(full), { what: 'the full job logged' })).toBe(16);
    expect(await eventually(() => runs(preview), { what: 'the preview logged' })).toBeLessThanOrEqual(7);
  }, 400_000);
});
