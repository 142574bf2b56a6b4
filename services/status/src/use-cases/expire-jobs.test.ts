import { objectKeys } from '@stemflow/contracts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newEvent } from '@stemflow/bus';
import { EmbeddedJobStore } from '@stemflow/jobs';
import { FsBlobStore } from '@stemflow/storage';
import { v7 as uuidv7 } from 'uuid';
import { expect, it } from 'vitest';
import { expireJobs } from './expire-jobs.js';

it('deletes jobs older than the TTL with their objects, and keeps the rest', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ttl-'));
  const jobs = await EmbeddedJobStore.open(join(root, 'jobs.jsonl'));
  const blobs = new FsBlobStore(join(root, 'objects'));
  const make = async (at: Date) => {
    const id = uuidv7();
    await jobs.apply(newEvent('job.created', id, { input: { key: objectKeys.input(id), filename: 'a.wav', size: 1, content_type: 'audio/wav', sha256: 'a'.repeat(64) }, options: { stems: ['vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 }, owner: null }, at));
    await blobs.put(objectKeys.input(id), Buffer.from('x'));
    await blobs.put(objectKeys.stem(id, 'vocals', 'wav'), Buffer.from('y'));
    return id;
  };
  const now = new Date('2026-11-24T12:00:00Z');
  const old = await make(new Date('2026-11-23T10:00:00Z'));
  const fresh = await make(new Date('2026-11-24T11:00:00Z'));
  expect(await expireJobs({ jobs, blobs }, 24, now)).toBe(1);
  expect(await jobs.get(old)).toBeUndefined();
  expect(await blobs.list(objectKeys.job(old))).toEqual([]);
  expect(await jobs.get(fresh)).toBeDefined();
  expect((await blobs.list(objectKeys.job(fresh))).length).toBe(2);
  expect(await expireJobs({ jobs, blobs }, 24, now)).toBe(0);
});
