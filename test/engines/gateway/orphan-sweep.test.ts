/**
 * The gateway's sweep of unfinished writes, on the real S3 server and FerretDB: an interrupted
 * upload and the writes of jobs that ended or are gone are aborted once older than the grace; a
 * worker's write for a job that still runs is left alone, however long it takes (a long decode or
 * stem is not an interrupted upload), and finishes.
 */
import { objectKeys } from '@stemflow/contracts';
import { Readable } from 'node:stream';
import { newEvent } from '@stemflow/bus';
import { jobFromCreated, MongoJobStore } from '@stemflow/jobs';
import { S3BlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineEnv, eventually, unique } from '../../support/env.js';
import { mongoUrl } from '../../support/status.js';
import { s3Client } from '../../support/s3.js';
import { sweepOrphanUploads } from '../../../services/gateway/src/use-cases/sweep-orphans.js';

const bucket = unique('sweep').toLowerCase();
let blobs: S3BlobStore;
let jobs: MongoJobStore;

beforeAll(async () => {
  blobs = new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket });
  jobs = await MongoJobStore.connect(mongoUrl());
});
afterAll(async () => {
  await blobs?.deletePrefix('');
  await jobs?.close();
});

/** A job in the read model, left in the given state. */
async function job(state: 'processing' | 'failed' | 'canceled') {
  const id = uuidv7();
  const created = newEvent('job.created', id, {
    input: { key: objectKeys.input(id), filename: 'song.wav', size: 1, content_type: 'audio/wav', sha256: 'a'.repeat(64) },
    options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
    owner: null,
  });
  await jobs.create(jobFromCreated(created));
  await jobs.apply(newEvent('job.decoded', id, { pcmKey: objectKeys.pcm(id), sampleRate: 44100, channels: 2, frames: 44100, durationSec: 1 }));
  if (state === 'failed') await jobs.apply(newEvent('job.failed', id, { stage: 'separating', reason: 'The model ran out of memory.', code: 'MODEL_FAILED', retryable: false }));
  if (state === 'canceled') await jobs.apply(newEvent('job.canceled', id, {}));
  expect((await jobs.get(id))?.status).toBe(state);
  return id;
}

/** A write that has sent 20 MiB (more than one multipart part) and waits: the caller ends it. */
function stalledWrite(key: string) {
  const body = new Readable({ read() {} });
  for (let i = 0; i < 5; i++) body.push(Buffer.alloc(4 << 20, 7));
  const result = blobs.put(key, body).then(() => 'finished', () => 'aborted');
  return { finish: () => body.push(null), result };
}

describe('the orphan sweep', () => {
  it('aborts interrupted uploads and writes no running job owns, and leaves a running job\'s write to finish', { timeout: 120_000 }, async () => {
    const running = await job('processing');
    const failed = await job('failed');
    const canceled = await job('canceled');
    const gone = uuidv7();
    const upload = uuidv7(); // a gateway died mid-upload: no job was created
    const writes = {
      running: stalledWrite(objectKeys.pcm(running)),
      failed: stalledWrite(objectKeys.nativePcm(failed)),
      canceled: stalledWrite(`jobs/${canceled}/stems/vocals.wav`),
      gone: stalledWrite(objectKeys.pcm(gone)),
      upload: stalledWrite(objectKeys.input(upload)),
    };
    const s3 = s3Client();
    const uploads = async () => (await s3.listIncompleteUploadsQuery(bucket, 'jobs/', '', '', '')).uploads as { key: string; uploadId: string }[];
    const incomplete = async () => (await uploads()).map((u) => u.key).sort();
    // Each has its first part stored (an abort racing a part still being written is undone by it,
    // which S3 documents: such an upload is aborted again by the next sweep).
    const parts = (u: { key: string; uploadId: string }) => (s3 as unknown as { listParts(b: string, k: string, id: string): Promise<unknown[]> }).listParts(bucket, u.key, u.uploadId);
    await eventually(async () => {
      const all = await uploads();
      return all.length === 5 && (await Promise.all(all.map(parts))).every((p) => p.length > 0);
    }, { timeoutMs: 60_000, what: 'five multipart uploads, each with a part stored' });

    const d = { blobs, jobs, log: createLogger('gateway', 'silent') };
    expect(await sweepOrphanUploads(d, 60_000)).toEqual({ aborted: 0, removedJobs: 0 }); // all younger than the grace
    const r = await sweepOrphanUploads(d, 0, Date.now() + 1000);
    expect(r.aborted).toBe(4);
    expect(await incomplete()).toEqual([objectKeys.pcm(running)]);

    for (const w of Object.values(writes)) w.finish();
    expect(await writes.running.result).toBe('finished');
    for (const name of ['failed', 'canceled', 'gone', 'upload'] as const) expect(await writes[name].result, name).toBe('aborted');
    expect((await blobs.list('jobs/')).map((b) => b.key)).toEqual([objectKeys.pcm(running)]);
  });

  it("removes whatever a late writer left under a deleted job's prefix once older than the grace, and nothing of a job that exists", async () => {
    const live = await job('processing');
    const deleted = uuidv7(); // deleted: its record and input are gone, a separator wrote on
    await blobs.put(`jobs/${deleted}/work/pass-0/chunk-00000.bin`, Buffer.alloc(1000, 1));
    await blobs.put(`jobs/${deleted}/work/live/vocals/0000000000000`, Buffer.alloc(100, 2));
    await blobs.put(`jobs/${live}/work/pass-0/chunk-00000.bin`, Buffer.alloc(1000, 3));
    const d = { blobs, jobs, log: createLogger('gateway', 'silent') };
    expect((await sweepOrphanUploads(d, 60_000)).removedJobs).toBe(0); // younger than the grace
    expect((await sweepOrphanUploads(d, 0, Date.now() + 1000)).removedJobs).toBe(1);
    expect(await blobs.list(`jobs/${deleted}/`)).toEqual([]);
    expect((await blobs.list(`jobs/${live}/`)).map((b) => b.key)).toEqual([`jobs/${live}/work/pass-0/chunk-00000.bin`]);
  });
});
