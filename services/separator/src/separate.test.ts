/**
 * The separator's host code with a tiny model of htdemucs's shape (models/tiny): stem s is
 * 0.1·(s+1) of the mix, so every answer is known. Embedded adapters, no servers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InMemoryBus, newEvent, type Cancellations } from '@stemflow/bus';
import { EVENT_NAMES, QUEUES, type AnyEvent, type EventOf, type JobOptions, type QueueSpec, objectKeys } from '@stemflow/contracts';
import { ort } from '@stemflow/models';
import { FsBlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { v7 as uuidv7 } from 'uuid';
import { beforeAll, describe, expect, it } from 'vitest';
import { HtdemucsEngine, ModelPool, planChunks, type ModelRunner } from './core/index.js';
import { separateJob } from './use-cases/separate-job.js';
import { startSeparator } from './index.js';

const tinyModel = fileURLToPath(new URL('../../../models/tiny/tiny-htdemucs.onnx', import.meta.url));
const W = [0.1, 0.2, 0.3, 0.4];
const NAMES = ['drums', 'bass', 'other', 'vocals'] as const;
const SR = 44100;

let engine: HtdemucsEngine;
beforeAll(async () => {
  engine = new HtdemucsEngine(await ort.InferenceSession.create(tinyModel));
});

function mixture(frames: number): Float32Array {
  const x = new Float32Array(2 * frames);
  for (let i = 0; i < frames; i++) {
    x[2 * i] = 0.3 * Math.sin(i * 0.031) + 0.2 * Math.sin(i * 0.21) + 0.05;
    x[2 * i + 1] = 0.25 * Math.sin(i * 0.047 + 1) + 0.1 * Math.sin(i * 0.5) - 0.02;
  }
  return x;
}

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'sep-'));
  const blobs = new FsBlobStore(join(root, 'objects'));
  const bus = new InMemoryBus({ queues: [] });
  const events: AnyEvent[] = [];
  const watch: QueueSpec = { ...QUEUES.status, name: `watch-${uuidv7()}` };
  bus.declare(watch);
  const all: Record<string, (e: AnyEvent) => Promise<void>> = {};
  for (const n of EVENT_NAMES) all[n] = async (e) => void events.push(e);
  void bus.subscribe(watch, all as never);
  return { root, blobs, bus, events };
}

async function job(env: ReturnType<typeof setup>, frames: number, options: Partial<JobOptions> = {}) {
  const id = uuidv7();
  const opts: JobOptions = { stems: [...NAMES], format: 'f32', shifts: 1, overlap: 0.25, clip: 'clamp', sample_rate: 'input', residual: false, start: 0, ...options };
  const mix = mixture(frames);
  await env.blobs.put(objectKeys.pcm(id), Buffer.from(mix.buffer));
  // The options come with the event: the separator reads no database.
  const decoded = newEvent('job.decoded', id, { options: opts, pcmKey: objectKeys.pcm(id), sampleRate: 44100, channels: 2, frames, durationSec: frames / SR });
  return { id, mix, decoded };
}

/** Cancellations as a test drives them: a set it fills. */
function cancelSet(): Cancellations & { cancel: (id: string) => void } {
  const set = new Set<string>();
  return { seen: (id) => set.has(id), isCanceled: async (id) => set.has(id), close: async () => {}, cancel: (id) => void set.add(id) };
}
const noCancels = cancelSet();

/** Decodes a stem file with ffmpeg back to interleaved f32. */
async function stem(blobs: FsBlobStore, key: string): Promise<Float32Array> {
  const buf = execFileSync('ffmpeg', ['-v', 'error', '-i', join(blobs.root, key), '-f', 'f32le', '-ac', '2', '-ar', '44100', '-'], { maxBuffer: 1 << 30 });
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

/**
 * SNR away from the track's ends: Demucs's _ispec pads two zero frames on each side, so the
 * frequency branch fades over the first and last ~2,560 samples of every segment, by design
 * (the real model's time branch compensates; the tiny model's does not).
 */
const snr = (ref: Float32Array, got: Float32Array, edge = 2 * 4096) => {
  let p = 0, e = 0;
  for (let i = edge; i < ref.length - edge; i++) { p += ref[i]! ** 2; e += (ref[i]! - got[i]!) ** 2; }
  return 10 * Math.log10(p / e);
};
const expected = (mix: Float32Array, w: number) => {
  // Demucs normalizes the track by the mono mix's mean/std and restores both on every stem:
  // stem = w·(x - mean) + mean.
  let m = 0;
  for (let i = 0; i < mix.length; i += 2) m += (mix[i]! + mix[i + 1]!) / 2;
  m /= mix.length / 2;
  return mix.map((v) => w * (v - m) + m);
};

describe('chunk plans', () => {
  it('even plan: a 30 s clip needs 5 full runs where Demucs makes 6', () => {
    const even = planChunks(30 * SR, 0.25, 'even');
    const demucs = planChunks(30 * SR, 0.25, 'demucs');
    expect(even).toHaveLength(5);
    expect(demucs).toHaveLength(6);
    expect(even.every((c) => c.length === 343980)).toBe(true);
    expect(even.at(-1)!.offset + 343980).toBe(30 * SR);
    for (let i = 1; i < even.length; i++) expect(even[i - 1]!.offset + 343980 - even[i]!.offset).toBeGreaterThanOrEqual(0.25 * 343980);
  });
  it('a clip shorter than a segment is one padded run', () => {
    expect(planChunks(5 * SR, 0.25, 'even')).toEqual([{ index: 0, offset: 0, length: 5 * SR }]);
  });
});

// Each case runs the tiny model over 30 s of audio (4–5 s alone, longer beside the other unit tests).
describe('separating with the tiny model', { timeout: 60_000 }, () => {
  it('writes each stem, and stems are what the model says (overlap-add, iSTFT, de-normalization exact)', async () => {
    const env = setup();
    const j = await job(env, 20 * SR);
    await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    const done = env.events.find((e) => e.type === 'job.completed') as EventOf<'job.completed'>;
    expect(done.payload.stems.map((s) => s.name)).toEqual([...NAMES]);
    for (const [s, name] of NAMES.entries()) {
      const got = await stem(env.blobs, objectKeys.stem(j.id, name, 'wav'));
      expect(got.length).toBe(j.mix.length);
      expect(snr(expected(j.mix, W[s]!), got)).toBeGreaterThan(90);
    }
    const progress = env.events.filter((e) => e.type === 'job.progress') as EventOf<'job.progress'>[];
    expect(progress.map((p) => p.payload.chunk?.index).filter((x) => x !== undefined)).toEqual([0, 1, 2, 3]);
    expect(progress.at(-1)!.payload.stage).toBe('encoding');
    expect(await env.blobs.list(`jobs/${j.id}/work/`)).toEqual([]);
  });

  it('a job that dies mid-way resumes after its last checkpointed chunk, with the same result', async () => {
    const env = setup();
    const j = await job(env, 30 * SR);
    // The process "dies" when it publishes progress for the third chunk.
    const failing = { ...env.bus, publish: async (e: AnyEvent) => { if (e.type === 'job.progress' && e.payload.chunk?.index === 2) throw new Error('killed'); return env.bus.publish(e); } } as unknown as InMemoryBus;
    const before = engine.runs;
    await expect(separateJob({ ...env, bus: failing, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded)).rejects.toThrow('killed');
    // The model was already running chunk 3 when chunk 2's checkpoint went through: pipelining.
    expect(engine.runs - before).toBeLessThanOrEqual(4);
    const mid = engine.runs;
    await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect(engine.runs - mid).toBe(2); // chunks 3 and 4 only (2 was checkpointed before the crash)
    const vocals = await stem(env.blobs, objectKeys.stem(j.id, 'vocals', 'wav'));
    expect(snr(expected(j.mix, 0.4), vocals)).toBeGreaterThan(90);
  });

  it('a streaming job (clamp) stores its stems in pieces while it runs; across a crash and resume they are the finished file, none stored twice', async () => {
    const env = setup();
    const j = await job(env, 30 * SR, { format: 'wav16' });
    const pieces: { key: string; bytes: Buffer }[] = [];
    const recording = Object.create(env.blobs, {
      put: { value: async (key: string, body: Buffer, o?: object) => {
        if (key.includes('/work/live/') && !key.endsWith('.json')) pieces.push({ key, bytes: Buffer.from(body) });
        return env.blobs.put(key, body, o as never);
      } },
    }) as FsBlobStore;
    const failing = { ...env.bus, publish: async (e: AnyEvent) => { if (e.type === 'job.progress' && e.payload.chunk?.index === 2) throw new Error('killed'); return env.bus.publish(e); } } as unknown as InMemoryBus;
    await expect(separateJob({ ...env, blobs: recording, bus: failing, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded)).rejects.toThrow('killed');
    const beforeResume = pieces.length;
    expect(beforeResume).toBeGreaterThan(0); // heard before the crash
    await separateJob({ ...env, blobs: recording, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    for (const name of NAMES) {
      const mine = pieces.filter((p) => p.key.includes(`/live/${name}/`)).map((p) => ({ offset: Number(p.key.split('/').pop()), bytes: p.bytes }));
      expect(new Set(mine.map((p) => p.offset)).size, name).toBe(mine.length);
      mine.sort((a, b) => a.offset - b.offset);
      let at = 0;
      for (const p of mine) {
        expect(p.offset, name).toBe(at);
        at += p.bytes.length;
      }
      const file = await readFile(join(env.blobs.root, objectKeys.stem(j.id, name, 'wav')));
      expect(Buffer.concat(mine.map((p) => p.bytes)).equals(file), name).toBe(true);
    }
    // Ready seconds grow to the whole track; the pieces are gone with the work area.
    const ready = env.events.filter((e) => e.type === 'job.progress' && e.payload.readySec !== undefined).map((e) => (e.payload as { readySec: number }).readySec);
    expect(ready).toEqual([...ready].sort((a, b) => a - b));
    expect(ready.at(-1)).toBe(30);
    expect(await env.blobs.list(`jobs/${j.id}/work/`)).toEqual([]);
  });

  it.each(['mp3', 'flac'] as const)('a streaming %s stem: its pieces are the finished file, whose header (made before the first sample) gives its exact length', async (format) => {
    const env = setup();
    const j = await job(env, 20 * SR + 123, { format });
    const pieces: { key: string; bytes: Buffer }[] = [];
    const recording = Object.create(env.blobs, {
      put: { value: async (key: string, body: Buffer, o?: object) => {
        if (key.includes('/work/live/vocals/')) pieces.push({ key, bytes: Buffer.from(body) });
        return env.blobs.put(key, body, o as never);
      } },
    }) as FsBlobStore;
    await separateJob({ ...env, blobs: recording, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect(pieces.length).toBeGreaterThan(1);
    pieces.sort((a, b) => a.key.localeCompare(b.key));
    const file = await readFile(join(env.blobs.root, objectKeys.stem(j.id, 'vocals', format)));
    expect(Buffer.concat(pieces.map((p) => p.bytes)).equals(file)).toBe(true);
    const vocals = await stem(env.blobs, objectKeys.stem(j.id, 'vocals', format));
    expect(vocals.length / 2).toBe(20 * SR + 123); // gapless: the encoder's delay and padding are trimmed
    expect(snr(expected(j.mix, 0.4), vocals)).toBeGreaterThan(format === 'flac' ? 90 : 20);
  });

  it('a store that fails while the next chunk is being read fails the attempt, not the process', async () => {
    const env = setup();
    const j = await job(env, 30 * SR);
    const runsBefore = engine.runs;
    // Once a model run has finished, the next read of the mix (the chunk prepared while the model
    // runs on the one before) finds the store down.
    const flaky = Object.create(env.blobs, {
      get: { value: async (key: string, range?: { start: number; end?: number }) => {
        if (range && key === objectKeys.pcm(j.id) && engine.runs > runsBefore) throw Object.assign(new Error('object store is unavailable'), { retryable: true });
        return env.blobs.get(key, range);
      } },
    }) as FsBlobStore;
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      // A cancel check that answers over the network (the store's marker) takes a while.
      const slowCancels = { ...noCancels, isCanceled: async () => (await new Promise((r) => setTimeout(r, 30)), false) };
      await expect(separateJob({ ...env, blobs: flaky, cancels: slowCancels, engine, log: createLogger('t', 'silent') }, j.decoded)).rejects.toThrow('object store is unavailable');
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    // The retry resumes from the checkpoints and finishes.
    await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect((await env.blobs.head(objectKeys.stem(j.id, 'vocals', 'wav')))?.size).toBeGreaterThan(0);
  });

  it('a redelivered job.decoded after job.completed separates nothing (the completion marker)', async () => {
    const env = setup();
    const j = await job(env, 8 * SR, { format: 'wav16' });
    await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    const runs = engine.runs;
    await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect(engine.runs).toBe(runs);
    expect(env.events.filter((e) => e.type === 'job.completed' && e.jobId === j.id)).toHaveLength(1);
  });

  it('a job canceled before it reaches the separator (the marker in the store) is not separated', async () => {
    const env = setup();
    const j = await job(env, 8 * SR);
    const cancels = cancelSet();
    cancels.cancel(j.id);
    const runs = engine.runs;
    await separateJob({ ...env, cancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect(engine.runs).toBe(runs);
  });

  it('stops between chunks when the job is canceled, and cleans up', async () => {
    const env = setup();
    const j = await job(env, 30 * SR);
    const cancels = cancelSet();
    const cancelling = { ...env.bus, publish: async (e: AnyEvent) => { if (e.type === 'job.progress' && e.payload.chunk?.index === 0) cancels.cancel(j.id); return env.bus.publish(e); } } as unknown as InMemoryBus;
    const before = engine.runs;
    await separateJob({ ...env, bus: cancelling, cancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect(engine.runs - before).toBeLessThanOrEqual(2);
    expect(env.events.some((e) => e.type === 'job.completed')).toBe(false);
    expect(await env.blobs.list(`jobs/${j.id}/work/`)).toEqual([]);
  });

  it('a streaming job canceled as its stems are finished stores no stem, leaves no ffmpeg and no pieces', async () => {
    const env = setup();
    const j = await job(env, 20 * SR, { format: 'mp3' });
    const cancels = cancelSet();
    const cancelling = { ...env.bus, publish: async (e: AnyEvent) => { if (e.type === 'job.progress' && e.payload.stage === 'encoding') cancels.cancel(j.id); return env.bus.publish(e); } } as unknown as InMemoryBus;
    await separateJob({ ...env, bus: cancelling, cancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect(env.events.some((e) => e.type === 'job.completed')).toBe(false);
    expect(await env.blobs.list(`jobs/${j.id}/work/`)).toEqual([]);
    expect(await env.blobs.list(`jobs/${j.id}/stems/`)).toEqual([]);
    const out = execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
    expect(out.split('\n').filter((l) => l.includes('ffmpeg'))).toEqual([]);
  });

  it('a job deleted as its stems are stored leaves nothing under its prefix (what came after the delete is removed)', async () => {
    const env = setup();
    const j = await job(env, 10 * SR);
    let deleted = false;
    const deleting = Object.create(env.blobs, {
      put: { value: async (key: string, body: never, o?: object) => {
        const r = await env.blobs.put(key, body, o as never);
        // The gateway's DELETE lands right after the first stem is stored.
        if (!deleted && key.includes('/stems/')) {
          deleted = true;
          await env.blobs.deletePrefix(`jobs/${j.id}/`);
        }
        return r;
      } },
    }) as FsBlobStore;
    await separateJob({ ...env, blobs: deleting, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    expect(deleted).toBe(true);
    expect(await env.blobs.list(`jobs/${j.id}/`)).toEqual([]);
  });

  it('a job whose checkpoints vanish while its stems are encoded (deleted) fails, and leaves no ffmpeg running', async () => {
    const env = setup();
    // Two shifts: the stems are written from the checkpoints at the end (a one-pass clamp job writes them as it goes).
    const j = await job(env, 30 * SR, { clip: 'clamp', format: 'mp3', shifts: 2 });
    const ffmpegChildren = () => {
      const out = execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
      return out.split('\n').filter((l) => l.includes('ffmpeg')).length;
    };
    let seenEncoders = 0;
    // The store as a delete leaves it: the second checkpoint read during assembly finds nothing.
    let reads = 0;
    const deleting = Object.assign(Object.create(env.blobs) as FsBlobStore, {
      get: async (key: string, range?: { start: number; end?: number }) => {
        if (key.includes('/work/pass-') && ++reads === 2) {
          seenEncoders = ffmpegChildren();
          await env.blobs.deletePrefix(`jobs/${j.id}/`);
        }
        return env.blobs.get(key, range);
      },
    });
    await expect(separateJob({ ...env, blobs: deleting, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded)).rejects.toThrow(/no object/);
    expect(seenEncoders).toBe(4);
    await new Promise((r) => setTimeout(r, 200));
    expect(ffmpegChildren()).toBe(0);
  });

  it("reports each job's own timings: two jobs on one engine, the second's model time is not the sum of both", async () => {
    const env = setup();
    const runs: { modelRunSec: number; separateSec: number; wallSec: number; realtimeFactor: number }[] = [];
    const before = engine.runMs;
    for (let i = 0; i < 2; i++) {
      const j = await job(env, 20 * SR, { format: 'wav16' });
      await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
      const done = env.events.find((x) => x.type === 'job.completed' && x.jobId === j.id) as EventOf<'job.completed'>;
      runs.push(done.payload.timings as (typeof runs)[number]);
    }
    for (const t of runs) {
      expect(t.modelRunSec).toBeGreaterThan(0);
      expect(t.modelRunSec).toBeLessThanOrEqual(t.separateSec);
      expect(t.separateSec).toBeLessThanOrEqual(t.wallSec);
      expect(t.realtimeFactor).toBeCloseTo(t.separateSec / 20, 6);
    }
    // Each job counts its own runs: together they are the engine's time over both, not more.
    expect(runs[0]!.modelRunSec + runs[1]!.modelRunSec).toBeCloseTo((engine.runMs - before) / 1000, 6);
  });

  it('two engines, two jobs in one separator at once sharing them; one canceled, the other completes with its own timings', async () => {
    const env = setup();
    const other = new HtdemucsEngine(await ort.InferenceSession.create(tinyModel));
    const queue: QueueSpec = { ...QUEUES.separator, name: `separator-${uuidv7()}` };
    env.bus.declare(queue);
    const sep = await startSeparator({ bus: env.bus, blobs: env.blobs, log: createLogger('t', 'silent'), pool: new ModelPool([engine.runner, other.runner]) }, queue);
    try {
      const [a, b] = [await job(env, 30 * SR, { format: 'wav16' }), await job(env, 30 * SR, { format: 'wav16' })];
      // b is canceled once a and b have each made a chunk: both were in flight at once.
      let canceled = false;
      const both = () => [a, b].every((j) => env.events.some((e) => e.type === 'job.progress' && e.jobId === j.id && e.payload.chunk));
      const watcher = setInterval(() => {
        if (!canceled && both()) {
          canceled = true;
          void env.bus.publish(newEvent('job.canceled', b.id, {}));
        }
      }, 5);
      await env.bus.publish(a.decoded);
      await env.bus.publish(b.decoded);
      const done = await until(() => env.events.find((e) => e.type === 'job.completed' && e.jobId === a.id) as EventOf<'job.completed'> | undefined);
      clearInterval(watcher);
      expect(canceled).toBe(true);
      await until(async () => (await env.blobs.list(`jobs/${b.id}/work/`)).length === 0 || undefined);
      expect(env.events.some((e) => e.type === 'job.completed' && e.jobId === b.id)).toBe(false);
      expect(done.payload.stems).toHaveLength(4);
      const t = done.payload.timings as { modelRunSec: number; separateSec: number };
      expect(t.modelRunSec).toBeGreaterThan(0);
      expect(t.modelRunSec).toBeLessThanOrEqual(t.separateSec); // its own runs' time, not both jobs'
      const vocals = await stem(env.blobs, objectKeys.stem(a.id, 'vocals', 'wav'));
      expect(snr(expected(a.mix, 0.4), vocals)).toBeGreaterThan(60);
    } finally {
      await sep.stop();
      await other.close();
    }
  });

  it("a job canceled while its run waits for the engine behind another job's ends at once, without a model run", async () => {
    const env = setup();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let runs = 0;
    // One engine whose runs wait at a gate the test opens: the first job holds it.
    const held: ModelRunner = { device: 'cpu', run: async (mix, spec) => (await gate, runs++, engine.runner.run(mix, spec)), close: async () => {} };
    const pool = new ModelPool([held]);
    const queue: QueueSpec = { ...QUEUES.separator, name: `separator-${uuidv7()}` };
    env.bus.declare(queue);
    const sep = await startSeparator({ bus: env.bus, blobs: env.blobs, log: createLogger('t', 'silent'), pool, concurrency: 2 }, queue);
    try {
      const [a, b] = [await job(env, 20 * SR, { format: 'wav16' }), await job(env, 20 * SR, { format: 'wav16' })];
      await env.bus.publish(a.decoded);
      await until(() => pool.queued === 1 || undefined); // a: one run at the gate, one waiting
      await env.bus.publish(b.decoded);
      await until(() => pool.queued === 2 || undefined); // and b's first behind them
      await env.bus.publish(newEvent('job.canceled', b.id, {}));
      await until(async () => (await env.blobs.list(`jobs/${b.id}/work/`)).length === 0 || undefined);
      expect(pool.queued).toBe(1);
      expect(runs).toBe(0); // b ended while a still held the engine
      open();
      await until(() => env.events.find((e) => e.type === 'job.completed' && e.jobId === a.id));
      expect(runs).toBe(planChunks(20 * SR, 0.25).length); // a's chunks, none of b's
      expect(env.events.some((e) => e.type === 'job.completed' && e.jobId === b.id)).toBe(false);
    } finally {
      open();
      await sep.stop();
    }
  });

  it('a separator that stops (SIGTERM: a rollout) hands its job back at the next chunk; another continues it, no chunk computed twice', async () => {
    const env = setup();
    const queue: QueueSpec = { ...QUEUES.separator, name: `separator-${uuidv7()}` };
    env.bus.declare(queue);
    const log = createLogger('t', 'silent');
    const first = await startSeparator({ bus: env.bus, blobs: env.blobs, log, engine }, queue);
    const j = await job(env, 30 * SR, { format: 'wav16' });
    const chunks = () => env.events.filter((e): e is EventOf<'job.progress'> => e.type === 'job.progress' && e.jobId === j.id && !!e.payload.chunk).map((e) => e.payload.chunk!.index);
    await env.bus.publish(j.decoded);
    await until(() => chunks().length >= 1 || undefined);
    await first.stop(); // returns once the job is handed back: job.decoded published again
    await until(() => env.events.filter((e) => e.type === 'job.decoded' && e.jobId === j.id).length === 2 || undefined, 5_000);
    expect(env.events.some((e) => e.type === 'job.completed' && e.jobId === j.id)).toBe(false);
    const before = chunks().length;
    expect(before).toBeLessThan(5); // it stopped before the end of the job
    const second = await startSeparator({ bus: env.bus, blobs: env.blobs, log, engine }, queue);
    try {
      await until(() => env.events.find((e) => e.type === 'job.completed' && e.jobId === j.id));
      expect(chunks().slice().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]); // every chunk once, across both
      const vocals = await stem(env.blobs, objectKeys.stem(j.id, 'vocals', 'wav'));
      expect(snr(expected(j.mix, 0.4), vocals)).toBeGreaterThan(60);
    } finally {
      await second.stop();
    }
  });

  it('two-stem mode, random shifts, a short clip, and compressed formats', async () => {
    const env = setup();
    const j = await job(env, 3 * SR, { two_stems: 'vocals', shifts: 2, format: 'flac' });
    await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, j.decoded);
    const done = env.events.find((e) => e.type === 'job.completed') as EventOf<'job.completed'>;
    expect(done.payload.stems.map((s) => [s.name, s.format])).toEqual([['vocals', 'flac'], ['accompaniment', 'flac']]);
    const v = await stem(env.blobs, objectKeys.stem(j.id, 'vocals', 'flac'));
    const acc = await stem(env.blobs, objectKeys.stem(j.id, 'accompaniment', 'flac'));
    expect(v.length).toBe(j.mix.length);
    expect(snr(expected(j.mix, 0.4), v)).toBeGreaterThan(60); // 24-bit FLAC
    // Accompaniment sums three de-normalized stems: 0.6·(x − mean) + 3·mean.
    const mean = expected(j.mix, 0);
    const m = expected(j.mix, 0.6).map((x, i) => x + 2 * mean[i]!);
    expect(snr(m, acc)).toBeGreaterThan(60);
    const mp3 = await job(env, 2 * SR, { stems: ['bass'], format: 'mp3' });
    await separateJob({ ...env, cancels: noCancels, engine, log: createLogger('t', 'silent') }, mp3.decoded);
    expect((await stem(env.blobs, objectKeys.stem(mp3.id, 'bass', 'mp3'))).length / 2).toBe(2 * SR);
  });
});

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
