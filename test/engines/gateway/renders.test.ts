/**
 * Waveform peaks and mixdowns through the gateway, on the real S3 server and FerretDB, for stems of
 * every output format: peaks checked against peaks computed here from the stem's own samples
 * (decoded by ffmpeg apart from stemflow), every zoom level consistent with the finest, kept once
 * computed; mixdowns equal to the weighted sum of their stems; bad requests refused; a deleted job
 * leaves no render behind.
 */
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { newEvent, RabbitBus } from '@stemflow/bus';
import { AUDIO_FORMATS, FORMAT_EXT, type AudioFormat, type StemObject, objectKeys } from '@stemflow/contracts';
import { jobFromCreated, MongoJobStore } from '@stemflow/jobs';
import { S3BlobStore } from '@stemflow/storage';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegFile } from '../../support/audio.js';
import { engineEnv, eventually, unique } from '../../support/env.js';
import { serveGateway } from '../../support/gateway.js';
import { decodedF32 } from '../../support/jobs-http.js';
import { mongoUrl } from '../../support/status.js';
import { MAX_MIXES_PER_JOB, stemMix, stemPeaks } from '../../../services/gateway/src/use-cases/renders.js';

const bucket = unique('rnd').toLowerCase();
let blobs: S3BlobStore;
let jobs: MongoJobStore;
let bus: RabbitBus;
let gw: Awaited<ReturnType<typeof serveGateway>>;
const SEC = 6;

const CODEC: Record<AudioFormat, string[]> = {
  wav16: ['-c:a', 'pcm_s16le', '-f', 'wav'],
  wav24: ['-c:a', 'pcm_s24le', '-f', 'wav'],
  f32: ['-c:a', 'pcm_f32le', '-f', 'wav'],
  flac: ['-c:a', 'flac', '-f', 'flac'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '320k', '-f', 'mp3'],
};
/** A stem: a tone whose loudness swells and falls (so the peaks have shape), left and right apart. */
const stemAudio = (hz: number, format: AudioFormat) =>
  ffmpegFile(['-f', 'lavfi', '-i', `aevalsrc=0.8*sin(2*PI*${hz}*t)*abs(sin(PI*t/3))|0.5*sin(2*PI*${hz * 1.5}*t):s=44100:d=${SEC}`, ...CODEC[format]], FORMAT_EXT[format]);

/** A completed job whose stems are the given files, as the separator would have left it. */
async function completedJob(format: AudioFormat, names: readonly ('drums' | 'bass' | 'other' | 'vocals')[] = ['drums', 'bass', 'other', 'vocals']) {
  const id = uuidv7();
  const files: Record<string, Buffer> = {};
  const stems: StemObject[] = [];
  for (const [i, name] of names.entries()) {
    const data = await stemAudio(110 * (i + 1), format);
    const key = objectKeys.stem(id, name, FORMAT_EXT[format]);
    await blobs.put(key, data);
    files[name] = data;
    stems.push({ name, format, key, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
  }
  const created = newEvent('job.created', id, {
    input: { key: objectKeys.input(id), filename: `song ${format}.wav`, size: 1, content_type: 'audio/wav', sha256: 'a'.repeat(64) },
    options: { stems: ['drums', 'bass', 'other', 'vocals'], format, shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
    owner: null,
  });
  await jobs.create(jobFromCreated(created));
  await jobs.apply(newEvent('job.decoded', id, { pcmKey: objectKeys.pcm(id), sampleRate: 44100, channels: 2, frames: SEC * 44100, durationSec: SEC }));
  await jobs.apply(newEvent('job.completed', id, { stems, model: 'htdemucs', timings: {} }));
  return { id, files };
}

/** Peaks computed here, from the samples: per block, min and max over both channels, 16-bit. */
function expectedPeaks(samples: Float32Array, spp: number): number[] {
  const out: number[] = [];
  const frames = samples.length / 2;
  for (let b = 0; b < frames; b += spp) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let f = b; f < Math.min(frames, b + spp); f++) {
      lo = Math.min(lo, samples[2 * f]!, samples[2 * f + 1]!);
      hi = Math.max(hi, samples[2 * f]!, samples[2 * f + 1]!);
    }
    out.push(Math.round(lo * 32767), Math.round(hi * 32767));
  }
  return out;
}
const rms = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
const get = (path: string) => fetch(`${gw.url}${path}`);

beforeAll(async () => {
  blobs = new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket });
  jobs = await MongoJobStore.connect(mongoUrl());
  bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL') });
  gw = await serveGateway({ bus, blobs, jobs }, { presignSec: 60 });
});
afterAll(async () => {
  await gw.close();
  await bus.close();
  await jobs.close();
  await blobs.deletePrefix('');
});

describe('waveform peaks', () => {
  it.each(AUDIO_FORMATS)('%s: match peaks computed from the stem’s samples, at every level', async (format) => {
    const { id, files } = await completedJob(format, ['vocals']);
    const samples = decodedF32(files.vocals!);
    const fine = (await (await get(`/api/jobs/${id}/stems/vocals/peaks?samples_per_pixel=256`)).json()) as { version: number; channels: number; sample_rate: number; samples_per_pixel: number; bits: number; length: number; data: number[] };
    expect({ ...fine, data: undefined }).toEqual({ version: 2, channels: 1, sample_rate: 44100, samples_per_pixel: 256, bits: 16, length: Math.ceil(samples.length / 2 / 256), data: undefined });
    const want = expectedPeaks(samples, 256);
    expect(fine.data).toHaveLength(want.length);
    const worst = Math.max(...fine.data.map((v, i) => Math.abs(v - want[i]!)));
    expect(worst).toBeLessThanOrEqual(2); // 16-bit rounding (and the resampler's pass-through)
    // Every coarser level is the finest merged: the same waveform at every zoom.
    for (const spp of [1024, 16384]) {
      const level = (await (await get(`/api/jobs/${id}/stems/vocals/peaks?samples_per_pixel=${spp}`)).json()) as { length: number; data: number[] };
      const k = spp / 256;
      const merged: number[] = [];
      for (let i = 0; i < fine.length; i += k) {
        const block = Array.from({ length: Math.min(k, fine.length - i) }, (_, j) => i + j);
        merged.push(Math.min(...block.map((b) => fine.data[2 * b]!)), Math.max(...block.map((b) => fine.data[2 * b + 1]!)));
      }
      expect(level.data).toEqual(merged);
    }
  });

  it('are computed once and kept beside the stems; the default level is 1024', async () => {
    const { id } = await completedJob('wav16', ['drums']);
    const r = await get(`/api/jobs/${id}/stems/drums/peaks`);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    expect(((await r.json()) as { samples_per_pixel: number }).samples_per_pixel).toBe(1024);
    for (const spp of [256, 512, 1024, 2048, 4096, 8192, 16384]) expect(await blobs.head(objectKeys.peaks(id, 'drums', spp)), String(spp)).toBeDefined();
    // Served from the store now: replacing the stored level changes the answer.
    await blobs.put(objectKeys.peaks(id, 'drums', 1024), Buffer.from('{"kept":true}'));
    expect(await (await get(`/api/jobs/${id}/stems/drums/peaks`)).json()).toEqual({ kept: true });
  });

  it.each([
    ['a level the server does not keep', 'samples_per_pixel=300', 400, 'INVALID_QUERY'],
    ['an unknown parameter', 'zoom=2', 400, 'INVALID_QUERY'],
  ])('refuses %s', async (_what, query, status, code) => {
    const { id } = await completedJob('wav16', ['bass']);
    const r = await get(`/api/jobs/${id}/stems/bass/peaks?${query}`);
    expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([status, code]);
  });

  it('404 for a stem the job does not have', async () => {
    const { id } = await completedJob('wav16', ['bass']);
    const r = await get(`/api/jobs/${id}/stems/vocals/peaks`);
    expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([404, 'STEM_NOT_FOUND']);
  });
});

describe('mixdowns', () => {
  it.each([
    ['wav16', 'f32'],
    ['flac', 'wav24'],
    ['mp3', 'f32'],
    ['f32', 'flac'],
  ] as const)('%s stems mixed into %s equal the weighted sum of their samples', async (format, out) => {
    const { id, files } = await completedJob(format);
    const r = await get(`/api/jobs/${id}/mix?stems=drums,bass,other&gains=bass:0.5&format=${out}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-disposition')).toContain(encodeURIComponent(`song ${format} - drums + bass -6 dB + other.${FORMAT_EXT[out]}`));
    const mix = decodedF32(Buffer.from(await r.arrayBuffer()));
    const parts = (['drums', 'bass', 'other'] as const).map((n) => decodedF32(files[n]!));
    const sum = new Float32Array(parts[0]!.length);
    parts.forEach((p, k) => p.forEach((v, i) => (sum[i]! += (k === 1 ? 0.5 : 1) * v)));
    expect(mix.length).toBe(sum.length);
    // These stems sum past full scale (peak ~2): f32 keeps the sum as is; an integer format gets it
    // lowered to peak at full scale (the job's clip: rescale), not clipped.
    const peak = sum.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    expect(peak).toBeGreaterThan(1.2);
    const want = out === 'f32' ? sum : sum.map((v) => v / peak);
    const diff = mix.map((v, i) => v - want[i]!);
    expect(Math.abs(20 * Math.log10(rms(mix) / rms(want)))).toBeLessThan(0.1);
    expect(20 * Math.log10(rms(want) / rms(diff))).toBeGreaterThan(out === 'f32' ? 100 : 80);
    expect(mix.reduce((a, v) => Math.max(a, Math.abs(v)), 0)).toBeLessThanOrEqual(out === 'f32' ? peak + 1e-6 : 1);
  });

  it('carries a tempo (the key kept) and a transposition (the tempo kept), as the page plays them', async () => {
    const { id, files } = await completedJob('wav16', ['drums']);
    const left = (x: Float32Array) => x.filter((_, i) => i % 2 === 0);
    /** Zero crossings per second of the left channel (the drums tone: 110 Hz, 220 crossings/s). */
    const crossingsPerSec = (x: Float32Array) => {
      const l = left(x).subarray(44100, 4 * 44100); // away from the ends and the swell's silence
      let n = 0;
      for (let i = 1; i < l.length; i++) if ((l[i - 1]! < 0) !== (l[i]! < 0)) n++;
      return n / (l.length / 44100);
    };
    const orig = decodedF32(files.drums!);
    const slow = await get(`/api/jobs/${id}/mix?stems=drums&format=f32&tempo=0.5`);
    expect(slow.status).toBe(200);
    expect(slow.headers.get('content-disposition')).toContain(encodeURIComponent('drums (50 %).wav'));
    const s2 = decodedF32(Buffer.from(await slow.arrayBuffer()));
    expect(s2.length / orig.length).toBeCloseTo(2, 1); // twice as long…
    expect(crossingsPerSec(s2) / crossingsPerSec(orig)).toBeCloseTo(1, 1); // …in the same key
    const up = await get(`/api/jobs/${id}/mix?stems=drums&format=f32&semitones=12`);
    const u = decodedF32(Buffer.from(await up.arrayBuffer()));
    expect(u.length / orig.length).toBeCloseTo(1, 1); // as long…
    expect(crossingsPerSec(u) / crossingsPerSec(orig)).toBeCloseTo(2, 1); // …an octave up
    for (const bad of ['tempo=2', 'tempo=0.1', 'semitones=13', 'semitones=1.5']) {
      const r = await get(`/api/jobs/${id}/mix?stems=drums&${bad}`);
      expect([r.status, ((await r.json()) as { code: string }).code], bad).toEqual([400, 'INVALID_QUERY']);
    }
  });

  it('is rendered once (the same request is the same object) and gone with its job', async () => {
    const { id } = await completedJob('wav16');
    for (let i = 0; i < 2; i++) expect((await get(`/api/jobs/${id}/mix?stems=vocals,drums`)).status).toBe(200);
    await get(`/api/jobs/${id}/stems/vocals/peaks`);
    expect(await blobs.list(`jobs/${id}/mixes/`)).toHaveLength(1);
    expect((await fetch(`${gw.url}/api/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await blobs.list(`jobs/${id}/`)).toEqual([]);
  });

  it(`keeps at most ${MAX_MIXES_PER_JOB} mixes of a job (the oldest go), and gains the same to a hundredth are one render`, async () => {
    const { id } = await completedJob('wav16', ['drums']);
    for (let i = 0; i < MAX_MIXES_PER_JOB + 3; i++) expect((await get(`/api/jobs/${id}/mix?stems=drums&gains=drums:0.${String(10 + i)}&format=wav16`)).status).toBe(200);
    expect(await blobs.list(`jobs/${id}/mixes/`)).toHaveLength(MAX_MIXES_PER_JOB);
    const names = async () => (await blobs.list(`jobs/${id}/mixes/`)).map((b) => b.key).sort();
    expect((await get(`/api/jobs/${id}/mix?stems=drums&gains=drums:0.301&format=wav16`)).status).toBe(200);
    const after = await names();
    expect((await get(`/api/jobs/${id}/mix?stems=drums&gains=drums:0.3&format=wav16`)).status).toBe(200);
    expect(await names()).toEqual(after); // the same render: nothing new, nothing evicted
  });

  it.each([
    ['a stem the job lacks', 'stems=drums,vocals', 'INVALID_MIX'],
    ['a name that is no stem', 'stems=drums,kazoo', 'INVALID_QUERY'],
    ['a stem twice', 'stems=drums,drums', 'INVALID_MIX'],
    ['a gain over 4', 'stems=drums&gains=drums:5', 'INVALID_MIX'],
    ['a gain for a stem not mixed', 'stems=drums&gains=bass:0.5', 'INVALID_MIX'],
    ['a negative gain', 'stems=drums&gains=drums:-1', 'INVALID_QUERY'],
    ['an unknown format', 'format=ogg', 'INVALID_QUERY'],
    ['an unknown parameter', 'volume=2', 'INVALID_QUERY'],
  ])('refuses %s with a 400 and a sentence', async (_what, query, code) => {
    const { id } = await completedJob('wav16', ['drums']);
    const r = await get(`/api/jobs/${id}/mix?${query}`);
    const body = (await r.json()) as { code: string; detail: string };
    expect([r.status, body.code]).toEqual([400, code]);
    expect(body.detail.length).toBeGreaterThan(10);
  });

  it('a job deleted while its renders run: a 404, and nothing they wrote is left', async () => {
    const { id } = await completedJob('wav16', ['drums', 'vocals']);
    const job = (await jobs.get(id))!;
    // The delete lands after the render read its stems: what it then wrote is removed.
    await expect(stemMix(blobs, job, [{ name: 'drums', gain: 1 }], 'wav16', async () => false)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND', status: 404 });
    await expect(stemPeaks(blobs, job, job.stems[1]!, 1024, async () => false)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND', status: 404 });
    expect((await blobs.list(`jobs/${id}/`)).map((b) => b.key).filter((k) => !k.includes('/stems/'))).toEqual([]);
    // The delete lands first: the render cannot read the stems, and says the job is gone.
    await blobs.deletePrefix(`jobs/${id}/`);
    await jobs.delete(id);
    await expect(stemMix(blobs, job, [{ name: 'vocals', gain: 1 }], 'wav16', async () => (await jobs.get(id)) !== undefined)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
    await expect(stemPeaks(blobs, job, job.stems[0]!, 256, async () => (await jobs.get(id)) !== undefined)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
    expect(await blobs.list(`jobs/${id}/`)).toEqual([]);
  });

  it('a delete that lands while a render reads its stems (the objects gone, the record not yet): a 404, nothing left', async () => {
    const { id } = await completedJob('wav16', ['drums', 'vocals']);
    const job = (await jobs.get(id))!;
    // The store hands ffmpeg a stem's address, then the delete removes the job's objects: ffmpeg
    // reads nothing, and the job's record is still there (the delete removes it last).
    const sourceUrl = async (key: string, sec: number) => {
      const url = await blobs.sourceUrl(key, sec);
      await blobs.deletePrefix(`jobs/${id}/`);
      return url;
    };
    const racing = () => new Proxy(blobs, { get: (t, k) => (k === 'sourceUrl' ? sourceUrl : (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t)) });
    const stillThere = async () => (await jobs.get(id)) !== undefined;
    await expect(stemPeaks(racing(), job, job.stems[1]!, 1024, stillThere)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND', status: 404 });
    await expect(stemMix(racing(), job, [{ name: 'drums', gain: 1 }], 'wav16', stillThere)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND', status: 404 });
    expect(await blobs.list(`jobs/${id}/`)).toEqual([]);
    // Over HTTP, with the record still there and the objects gone: 404 from every render.
    for (const path of [`/api/jobs/${id}/stems/vocals/peaks?samples_per_pixel=256`, `/api/jobs/${id}/mix?stems=drums`]) {
      const r = await get(path);
      expect([path, r.status, ((await r.json()) as { code: string }).code]).toEqual([path, 404, 'JOB_NOT_FOUND']);
    }
    await jobs.delete(id);
  });

  it('404 for a job that has not completed', async () => {
    const id = uuidv7();
    await jobs.create(jobFromCreated(newEvent('job.created', id, { input: { key: objectKeys.input(id), filename: 'x.wav', size: 1, content_type: 'audio/wav', sha256: 'b'.repeat(64) }, options: { stems: ['vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 }, owner: null })));
    const r = await get(`/api/jobs/${id}/mix`);
    expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([409, 'JOB_NOT_COMPLETED']);
  });
});

describe('the stems zip', () => {
  /** A gateway on the same store, whose stem reads are kept to be looked at (and one may be held open). */
  async function watchedGateway(hold?: string) {
    const opened: Readable[] = [];
    const held = new PassThrough();
    const get = async (key: string, range?: Parameters<S3BlobStore['get']>[1]) => {
      const s = key === hold ? held : await blobs.get(key, range);
      opened.push(s);
      return s;
    };
    const watched = new Proxy(blobs, { get: (t, k) => (k === 'get' ? get : (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t)) });
    return { opened, held, gw: await serveGateway({ bus, blobs: watched, jobs }, { presignSec: 60 }) };
  }

  it('a stem gone before the zip starts (a delete under way): 404, and the stems opened by then are let go', async () => {
    const { id } = await completedJob('wav16');
    await blobs.delete(objectKeys.stem(id, 'vocals', 'wav'));
    const w = await watchedGateway();
    try {
      const r = await fetch(`${w.gw.url}/api/jobs/${id}/stems.zip`);
      expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([404, 'JOB_NOT_FOUND']);
      expect(w.opened).toHaveLength(3);
      expect(w.opened.map((s) => s.destroyed)).toEqual([true, true, true]);
    } finally {
      await w.gw.close();
    }
  });

  it('a client that leaves mid-zip: the zip stops and every stem it had opened is let go', async () => {
    const { id } = await completedJob('f32');
    const w = await watchedGateway(objectKeys.stem(id, 'vocals', 'wav'));
    try {
      const ac = new AbortController();
      const r = await fetch(`${w.gw.url}/api/jobs/${id}/stems.zip`, { signal: ac.signal });
      expect(r.status).toBe(200);
      // The first bytes come (the zip is under way; the held stem never ends), then the client goes.
      const reader = r.body!.getReader();
      expect((await reader.read()).done).toBe(false);
      ac.abort();
      await eventually(async () => w.opened.length === 4 && w.opened.every((s) => s.destroyed), { timeoutMs: 5000, what: 'every stem the zip opened destroyed' });
    } finally {
      await w.gw.close();
    }
  });
});
