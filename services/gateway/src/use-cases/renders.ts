/**
 * Peaks and mixdowns of a job's stems: rendered once, on first request, and kept in the store
 * beside the stems (removed with the job). Concurrent requests for the same render share it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FORMAT_EXT, StemflowError, type AudioFormat, type Job, type StemObject, objectKeys } from '@stemflow/contracts';
import { PEAK_LEVELS, STEM_DEMUXER, computePeaks, renderMix, type PeakLevel } from '@stemflow/audio';
import { readObject, readObjectIfAny, type BlobStore } from '@stemflow/storage';

/** Renders (ffmpeg processes) one gateway runs at once, and how many may wait for one. */
export const MAX_RENDERS = 2;
export const MAX_WAITING_RENDERS = 16;
/** Mixdowns kept per job: past it the oldest goes (a client varying gains cannot fill the store). */
export const MAX_MIXES_PER_JOB = 16;

const inFlight = new Map<string, Promise<unknown>>();
let running = 0;
const waiting: (() => void)[] = [];
/** A render slot: at most MAX_RENDERS at once; past MAX_WAITING_RENDERS waiting, 503 at once. */
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_RENDERS) {
    if (waiting.length >= MAX_WAITING_RENDERS) throw new StemflowError('RENDERS_BUSY', 'this server is rendering as many waveforms and mixes as it can; try again in a few seconds', { status: 503, retryable: true });
    await new Promise<void>((r) => waiting.push(r));
  }
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}
/** One render per key at a time in this process; the others wait for it. */
function once<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const current = inFlight.get(key) as Promise<T> | undefined;
  if (current) return current;
  const p = slot(fn).finally(() => inFlight.delete(key));
  inFlight.set(key, p);
  return p;
}

/** Whether the job still exists (a delete may land while a render runs). */
export type StillThere = () => Promise<boolean>;
const gone = (job: Job) => new StemflowError('JOB_NOT_FOUND', `no job ${job.id} (it was deleted)`, { status: 404 });

/**
 * Runs a render for a job that may be deleted meanwhile. A delete removes the job's objects, then
 * its record; a render that fails because the stems it reads went (the record may still be there,
 * for a moment) is a 404, and so is one that finished after they went, whose writes are removed
 * (a delete after this check removes them with the rest of the job).
 */
async function forLiveJob<T>(blobs: BlobStore, job: Job, exists: StillThere, reads: StemObject[], written: () => string[], fn: () => Promise<T>): Promise<T> {
  // When the check itself fails the render's own outcome stands (an unreachable store is not a delete).
  const vanished = async () => !(await exists().catch(() => true)) || (await Promise.all(reads.map((s) => blobs.head(s.key).catch(() => true)))).some((h) => !h);
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    if (await vanished()) throw gone(job);
    throw err;
  }
  if (await vanished()) {
    for (const k of written()) await blobs.delete(k).catch(() => {});
    throw gone(job);
  }
  return result;
}

const stemSource = async (blobs: BlobStore, s: StemObject) => ({ location: await blobs.sourceUrl(s.key, 3600), media: { demuxer: STEM_DEMUXER[s.format], demuxerOptions: [] } });

/** The stem's peaks at one level, as the JSON bytes to send. */
export async function stemPeaks(blobs: BlobStore, job: Job, stem: StemObject, level: PeakLevel, exists: StillThere): Promise<Buffer> {
  const key = objectKeys.peaks(job.id, stem.name, level);
  const kept = await readObjectIfAny(blobs, key);
  if (kept) return kept;
  const all = PEAK_LEVELS.map((spp) => objectKeys.peaks(job.id, stem.name, spp));
  await once(`peaks:${job.id}:${stem.name}`, () =>
    forLiveJob(blobs, job, exists, [stem], () => all, async () => {
      const levels = await computePeaks(await stemSource(blobs, stem), { maxSec: (job.input.duration_sec ?? 24 * 3600) + 5 });
      // The requested level last: its presence says every level is there.
      for (const spp of [...PEAK_LEVELS.filter((l) => l !== level), level]) await blobs.put(objectKeys.peaks(job.id, stem.name, spp), Buffer.from(JSON.stringify(levels.get(spp))), { contentType: 'application/json' });
    }),
  );
  return readObject(blobs, key);
}

export type MixPick = { name: string; gain: number };

/** The mixdown of the picked stems with their gains, rendered once; returns where it is. */
export async function stemMix(blobs: BlobStore, job: Job, picks: MixPick[], format: AudioFormat, exists: StillThere, practice: { tempo?: number | undefined; semitones?: number | undefined } = {}): Promise<{ key: string; bytes: number }> {
  const sorted = [...picks].sort((a, b) => a.name.localeCompare(b.name));
  const tempo = practice.tempo ?? 1, semitones = practice.semitones ?? 0;
  const name = createHash('sha256').update(JSON.stringify({ sorted, format, clip: job.options.clip, ...(tempo !== 1 || semitones !== 0 ? { tempo, semitones } : {}) })).digest('hex').slice(0, 24);
  const key = objectKeys.mix(job.id, name, FORMAT_EXT[format]);
  const done = await blobs.head(key);
  if (done) return { key, bytes: done.size };
  const stems = sorted.map((p) => job.stems.find((s) => s.name === p.name)!);
  return once(`mix:${key}`, () => forLiveJob(blobs, job, exists, stems, () => [key], async () => {
    const file = join(tmpdir(), `stemflow-mix-${randomUUID()}.${FORMAT_EXT[format]}`);
    try {
      const inputs = await Promise.all(sorted.map(async (p, i) => ({ src: await stemSource(blobs, stems[i]!), gain: p.gain })));
      // At the stems' own rate (the input's, unless 44.1 kHz was asked; jobs before 2026-12: 44.1 kHz).
      await renderMix(inputs, format, file, { clip: job.options.clip, sampleRate: job.report?.sample_rate ?? job.output?.sample_rate, tempo, semitones });
      const kept = (await blobs.list(`${objectKeys.job(job.id)}mixes/`)).sort((a, b) => (a.modified?.getTime() ?? 0) - (b.modified?.getTime() ?? 0));
      for (const old of kept.slice(0, Math.max(0, kept.length - MAX_MIXES_PER_JOB + 1))) await blobs.delete(old.key).catch(() => {});
      const { bytes } = await blobs.put(key, createReadStream(file), { contentType: 'application/octet-stream' });
      return { key, bytes };
    } finally {
      await unlink(file).catch(() => {});
    }
  }));
}

/** `stems=drums,bass&gains=drums:0.5` → the picks, checked against the job's stems. */
export function parseMix(job: Job, stems: string | undefined, gains: string | undefined): MixPick[] {
  const have = job.stems.map((s) => s.name as string);
  const names = stems ? stems.split(',').map((s) => s.trim()).filter(Boolean) : have;
  if (!names.length) throw new StemflowError('INVALID_MIX', 'name at least one stem to mix', { status: 400 });
  for (const n of names) if (!have.includes(n)) throw new StemflowError('INVALID_MIX', `the job has no stem "${n.slice(0, 40)}" (it has ${have.join(', ')})`, { status: 400 });
  if (new Set(names).size !== names.length) throw new StemflowError('INVALID_MIX', 'a stem is named twice', { status: 400 });
  const g = new Map<string, number>();
  for (const part of (gains ?? '').split(',').filter(Boolean)) {
    const [n, v] = part.split(':');
    const x = Number(v);
    if (!n || !names.includes(n) || v === undefined || !/^\d*\.?\d+$/.test(v) || x > 4) throw new StemflowError('INVALID_MIX', `"${part.slice(0, 40)}": gains are stem:value pairs for mixed stems, values from 0 to 4 (1 = as separated)`, { status: 400 });
    g.set(n, Math.round(x * 100) / 100); // a hundredth of gain is below hearing: no render per rounding error
  }
  return names.map((name) => ({ name, gain: g.get(name) ?? 1 }));
}
