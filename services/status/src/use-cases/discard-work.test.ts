import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemoryBus, newEvent } from '@stemflow/bus';
import { JobOptions, objectKeys } from '@stemflow/contracts';
import { EmbeddedJobStore, jobFromCreated } from '@stemflow/jobs';
import { FsBlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStatus } from '../index.js';

const log = createLogger('test', 'silent');
let bus: InMemoryBus;
let jobs: EmbeddedJobStore;
let blobs: FsBlobStore;
let stop: () => Promise<void>;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'discard-'));
  blobs = new FsBlobStore(join(root, 'objects'));
  jobs = await EmbeddedJobStore.open(join(root, 'jobs.jsonl'));
  bus = new InMemoryBus({ log });
  stop = (await startStatus({ bus, blobs, jobs }, log)).stop;
});
afterAll(async () => {
  await stop();
  await bus.close();
});

/** A job that was decoded and separated part way, with a stem being streamed, as the workers leave it. */
async function jobInFlight() {
  const id = uuidv7();
  const created = newEvent('job.created', id, { input: { key: objectKeys.input(id), filename: 'a.wav', size: 1, content_type: 'audio/wav', sha256: 'a'.repeat(64) }, options: JobOptions.parse({ clip: 'clamp' }), owner: null });
  await jobs.create(jobFromCreated(created));
  for (const key of [objectKeys.input(id), objectKeys.webhook(id), objectKeys.pcm(id), objectKeys.nativePcm(id), `jobs/${id}/pcm/mix.json`, `jobs/${id}/work/plan.json`, `jobs/${id}/work/pass-0/chunk-00000.bin`, objectKeys.livePart(id, 'vocals', 0), objectKeys.liveManifest(id, 'vocals')]) {
    await blobs.put(key, Buffer.from('x'));
  }
  await bus.publish(newEvent('job.decoded', id, { pcmKey: objectKeys.pcm(id), sampleRate: 44100, channels: 2, frames: 44100, durationSec: 1 }));
  await waitFor(async () => (await jobs.get(id))?.status === 'processing');
  return id;
}

async function waitFor(ok: () => Promise<boolean>) {
  for (let i = 0; i < 200 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 10));
  expect(await ok()).toBe(true);
}

const left = async (id: string) => (await blobs.list(objectKeys.job(id))).map((b) => b.key.slice(objectKeys.job(id).length));

describe('a job that ends without stems', () => {
  it.each([
    ['failed', (id: string) => newEvent('job.failed', id, { stage: 'separating', reason: 'The model ran out of memory.', code: 'MODEL_FAILED', retryable: false })],
    ['canceled', (id: string) => newEvent('job.canceled', id, {})],
  ] as const)('%s: its PCM, checkpoints and streamed pieces are removed; its input and webhook target stay', async (status, end) => {
    const id = await jobInFlight();
    await bus.publish(end(id));
    await waitFor(async () => (await jobs.get(id))?.status === status);
    await waitFor(async () => (await left(id)).length === 2);
    expect(await left(id)).toEqual(['input/source', 'webhook.json']);
  });

  it('a job still running keeps everything', async () => {
    const id = await jobInFlight();
    expect(await left(id)).toHaveLength(9);
  });
});
