/** One behaviour suite for every JobStore adapter (embedded here, MongoDB/FerretDB in test/). */
import type { AnyEvent, Job, JobStage } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import type { JobStore } from './port.js';
import { jobFromCreated } from './projection.js';

export const t = (s: number) => new Date(Date.UTC(2026, 10, 24, 10, 0, s)).toISOString();
let seq = 0;
const ev = <T extends AnyEvent['type']>(type: T, jobId: string, payload: Extract<AnyEvent, { type: T }>['payload'], at: string) =>
  ({ id: uuidv7(), type, version: 1, jobId, occurredAt: at, payload, _seq: seq++ }) as unknown as Extract<AnyEvent, { type: T }>;

export const created = (jobId: string, at = t(0), sha = 'c'.repeat(64), owner: string | null = null) =>
  ev('job.created', jobId, {
    input: { key: `jobs/${jobId}/input/song.mp3`, filename: 'song.mp3', size: 1000, content_type: 'audio/mpeg', sha256: sha },
    options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
    owner,
  }, at);
/** An input given by URL: job.created names what to fetch; the decoder reports bytes, then job.imported. */
export const createdImport = (jobId: string, at = t(0)) =>
  ev('job.created', jobId, {
    import: { key: `jobs/${jobId}/input/source`, filename: 'song.flac', url: 'https://media.example.com/song.flac?…' },
    options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
    owner: null,
  }, at);
const importing = (jobId: string, received: number, at: string) => ev('job.progress', jobId, { stage: 'importing', progress: 0, bytes: { received, total: 4000 } }, at);
const imported = (jobId: string, at: string) =>
  ev('job.imported', jobId, { input: { key: `jobs/${jobId}/input/source`, filename: 'song (live).flac', size: 3990, content_type: 'audio/flac', sha256: 'f'.repeat(64), url: 'https://media.example.com/song.flac?…' } }, at);
export const progress = (jobId: string, stage: JobStage, p: number, at: string, readySec?: number) => ev('job.progress', jobId, { stage, progress: p, etaSec: 10, ...(readySec !== undefined ? { readySec } : {}) }, at);
export const decoded = (jobId: string, at: string) =>
  ev('job.decoded', jobId, { pcmKey: `jobs/${jobId}/pcm/mix.f32`, sampleRate: 44100, channels: 2, frames: 882000, durationSec: 20, output: { sampleRate: 48000, frames: 960000, format: 'wav24' } }, at);
const report = { sample_rate: 48000, frames: 960000, residual_db: -140.5, stems: [{ name: 'vocals' as const, peak: 0.5, peak_db: -6.02, gain: 1 }] };
const completed = (jobId: string, at: string) =>
  ev('job.completed', jobId, { stems: [{ name: 'vocals', format: 'wav16', key: `jobs/${jobId}/stems/vocals.wav`, bytes: 42 }], model: 'htdemucs', timings: { total: 1 }, report }, at);
const failed = (jobId: string, at: string) => ev('job.failed', jobId, { stage: 'decoding', reason: 'The file is not audio.', code: 'NOT_AUDIO', retryable: false }, at);

/** A whole job's life, in the order it happens. */
const lifecycle = (jobId: string): AnyEvent[] => [
  created(jobId, t(0)),
  progress(jobId, 'decoding', 0.02, t(1)),
  decoded(jobId, t(2)),
  progress(jobId, 'separating', 0.3, t(3), 5),
  progress(jobId, 'separating', 0.7, t(4), 12),
  progress(jobId, 'encoding', 0.95, t(5)),
  completed(jobId, t(6)),
];

/** An imported job's life: fetched (bytes reported, the source announced a little more than it sent), then as an upload's. */
const importLifecycle = (jobId: string): AnyEvent[] => [
  createdImport(jobId, t(0)),
  importing(jobId, 1000, t(1)),
  importing(jobId, 3000, t(2)),
  imported(jobId, t(3)),
  progress(jobId, 'decoding', 0.02, t(4)),
  decoded(jobId, t(5)),
  progress(jobId, 'separating', 0.5, t(6)),
  completed(jobId, t(7)),
];

/** Applies events as the status service does: an event for a job not created yet comes back later. */
async function applyAll(store: JobStore, events: AnyEvent[]) {
  let pending = [...events];
  for (let round = 0; pending.length && round < 20; round++) {
    const later: AnyEvent[] = [];
    for (const e of pending) if ((await store.apply(e)).outcome === 'unknown-job') later.push(e);
    pending = later;
  }
  expect(pending).toEqual([]);
}

const comparable = (j: Job | undefined) => j && { ...j, applied_events: [...j.applied_events].sort() };
export type { Job };

function shuffled<T>(xs: T[], seed: number): T[] {
  const a = [...xs];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export type JobStoreHarness = {
  store: JobStore;
  /** A second writer on the same data (another replica; the embedded store is its own peer). */
  peer: () => Promise<JobStore>;
  /** Closes and opens the store again on the same data. */
  reopen?: () => Promise<JobStore>;
};

export function jobStoreContract(name: string, make: () => Promise<JobStoreHarness>, opts: { orders: number }) {
  describe(`JobStore contract: ${name}`, () => {
    it('creates a pending job once (insert if absent)', async () => {
      const { store } = await make();
      const id = uuidv7();
      const job = jobFromCreated(created(id));
      expect(await store.create(job)).toEqual(job);
      expect(await store.create({ ...job, status: 'failed' })).toEqual(job);
      expect(await store.get(id)).toEqual(job);
    });

    it('walks every transition of a job and ignores duplicates and backwards moves', async () => {
      const { store } = await make();
      const id = uuidv7();
      const [c, pDec, dec, p30, p70, pEnc, done] = lifecycle(id) as [AnyEvent, AnyEvent, AnyEvent, AnyEvent, AnyEvent, AnyEvent, AnyEvent];
      expect((await store.apply(pDec)).outcome).toBe('unknown-job');
      expect((await store.apply(c)).outcome).toBe('applied');
      expect((await store.apply(c)).outcome).toBe('duplicate');
      expect((await store.apply(pDec)).job).toMatchObject({ status: 'processing', stage: 'decoding', progress: 0.02 });
      expect((await store.apply(dec)).job).toMatchObject({ stage: 'separating', progress: 0.05, input: { duration_sec: 20 }, output: { sample_rate: 48000, frames: 960000, format: 'wav24' } });
      expect((await store.apply(p70)).job).toMatchObject({ stage: 'separating', progress: 0.7, eta_sec: 10, ready_sec: 12 });
      expect((await store.apply(p30)).outcome).toBe('stale');
      expect((await store.apply(p70)).outcome).toBe('stale'); // progress is monotone: a repeat changes nothing
      expect((await store.apply(pEnc)).job).toMatchObject({ stage: 'encoding', progress: 0.95 });
      const fin = (await store.apply(done)).job!;
      expect(fin).toMatchObject({ status: 'completed', stage: null, progress: 1, eta_sec: null, updated_at: t(6) });
      expect(fin.stems).toEqual([{ name: 'vocals', format: 'wav16', key: `jobs/${id}/stems/vocals.wav`, bytes: 42 }]);
      expect(fin.report).toEqual(report);
      expect((await store.get(id))?.ready_sec).toBe(12);
      // Terminal is final.
      expect((await store.apply(failed(id, t(7)))).outcome).toBe('stale');
      expect((await store.apply(progress(id, 'encoding', 0.99, t(8)))).outcome).toBe('stale');
      expect((await store.get(id))?.status).toBe('completed');
    });

    it('records a failure with its reason', async () => {
      const { store } = await make();
      const id = uuidv7();
      await store.apply(created(id));
      const j = (await store.apply(failed(id, t(3)))).job!;
      expect(j).toMatchObject({ status: 'failed', error_message: 'The file is not audio.', error_code: 'NOT_AUDIO', updated_at: t(3) });
    });

    it('an import: bytes while it is fetched, then what was stored, then the stages of any job', async () => {
      const { store } = await make();
      const id = uuidv7();
      const [c, b1, b3, imp, pDec] = importLifecycle(id) as [AnyEvent, AnyEvent, AnyEvent, AnyEvent, AnyEvent];
      expect((await store.apply(c)).job).toMatchObject({ status: 'pending', input: { filename: 'song.flac' }, import: { received_bytes: 0, total_bytes: null, done: false } });
      expect((await store.apply(b3)).job).toMatchObject({ status: 'processing', stage: 'importing', progress: 0, import: { received_bytes: 3000, total_bytes: 4000, done: false } });
      expect((await store.apply(b1)).outcome).toBe('stale'); // bytes only grow
      const got = (await store.apply(imp)).job!;
      expect(got.input).toEqual({ key: `jobs/${id}/input/source`, filename: 'song (live).flac', size: 3990, content_type: 'audio/flac', sha256: 'f'.repeat(64), url: 'https://media.example.com/song.flac?…' });
      expect(got.import).toEqual({ url: 'https://media.example.com/song.flac?…', received_bytes: 3990, total_bytes: 3990, done: true });
      expect((await store.apply(pDec)).job).toMatchObject({ stage: 'decoding', progress: 0.02 });
    });

    for (const [what, life] of [['an upload', lifecycle], ['an import', importLifecycle]] as const)
    it(`ends in the same document whatever the order of ${what}'s events (${opts.orders} orders)`, async () => {
      const { store } = await make();
      const ref = uuidv7();
      await applyAll(store, life(ref));
      const want = comparable(await store.get(ref))!;
      for (let k = 0; k < opts.orders; k++) {
        const id = uuidv7();
        const events = life(id);
        const order = k === 0 ? [...events].reverse() : shuffled(events, k + 1);
        await applyAll(store, [...order, ...shuffled(order, k + 99)]); // every event twice, too
        const got = comparable(await store.get(id))!;
        // Equal but for the job's own id and keys, and the ids of the events that changed something.
        expect({ ...got, id: ref, input: { ...got.input, key: want.input.key }, stems: want.stems, applied_events: [] }).toEqual({ ...want, applied_events: [] });
        expect(got.applied_events.every((x) => events.some((e) => e.id === x))).toBe(true);
      }
    });

    it('never loses an update when two writers apply events at once', async () => {
      const h = await make();
      const a = h.store;
      const b = await h.peer();
      const id = uuidv7();
      await a.apply(created(id));
      const events = Array.from({ length: 40 }, (_, i) => progress(id, 'separating', (i + 1) / 50, t(10 + i)));
      await Promise.all(events.map((e, i) => (i % 2 ? a : b).apply(e)));
      const j = (await a.get(id))!;
      expect(j.progress).toBe(0.8);
      expect(j.updated_at).toBe(t(49));
      expect(j.applied_events.length).toBeLessThanOrEqual(41);
      await b.apply(completed(id, t(60)));
      expect((await a.get(id))?.status).toBe('completed');
    });

    it('lists newest first with cursor paging and filters', async () => {
      const { store } = await make();
      const owner = `owner-${uuidv7()}`;
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const id = uuidv7();
        ids.push(id);
        await store.apply(created(id, t(20 + i), 'd'.repeat(64), owner));
      }
      await store.apply(failed(ids[1]!, t(40)));
      const p1 = await store.list({ owner, limit: 2 });
      expect(p1.items.map((j) => j.id)).toEqual([ids[4], ids[3]]);
      const p2 = await store.list({ owner, limit: 2, cursor: p1.nextCursor! });
      expect(p2.items.map((j) => j.id)).toEqual([ids[2], ids[1]]);
      const p3 = await store.list({ owner, limit: 2, cursor: p2.nextCursor! });
      expect(p3.items.map((j) => j.id)).toEqual([ids[0]]);
      expect(p3.nextCursor).toBeNull();
      expect((await store.list({ owner, status: 'failed', limit: 10 })).items.map((j) => j.id)).toEqual([ids[1]]);
      expect((await store.list({ owner: `other-${uuidv7()}`, limit: 10 })).items).toEqual([]);
    });

    it('deletes a job for good: later events do not bring it back', async () => {
      const { store } = await make();
      const id = uuidv7();
      await store.apply(created(id));
      expect(await store.delete(id)).toBe(true);
      expect(await store.get(id)).toBeUndefined();
      expect((await store.apply(progress(id, 'decoding', 0.1, t(5)))).outcome).toBe('stale');
      expect((await store.apply(created(id))).outcome).toBe('stale');
      expect(await store.get(id)).toBeUndefined();
    });

    it('finds a completed job with the same input and options for reuse', async () => {
      const { store } = await make();
      const sha = uuidv7().replace(/-/g, '').padEnd(64, '0').slice(0, 64);
      const id = uuidv7();
      await store.apply(created(id, t(0), sha));
      const opts = (await store.get(id))!.options;
      expect(await store.findReusable(sha, opts, null)).toBeUndefined();
      await store.apply(completed(id, t(9)));
      expect((await store.findReusable(sha, { ...opts }, null))?.id).toBe(id);
      expect(await store.findReusable(sha, { ...opts, format: 'flac' }, null)).toBeUndefined();
      expect(await store.findReusable(sha, opts, 'someone-else')).toBeUndefined();
    });

    it('keeps every job across a restart', async () => {
      const h = await make();
      if (!h.reopen) return;
      const id = uuidv7();
      await applyAll(h.store, lifecycle(id));
      const gone = uuidv7();
      await h.store.apply(created(gone));
      await h.store.delete(gone);
      const before = await h.store.get(id);
      const again = await h.reopen();
      expect(await again.get(id)).toEqual(before);
      expect(await again.get(gone)).toBeUndefined();
      expect((await again.apply(created(gone))).outcome).toBe('stale');
    });
  });
}
