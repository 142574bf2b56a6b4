/**
 * The real model's worker thread dies in the middle of a job (terminated, as a crash of the
 * runtime ends it): the run in flight fails, the bus delivers the job again, a new worker is
 * started, and the job continues from its last checkpointed chunk — no chunk is computed twice,
 * the stems come out whole, and the separator's health says the model was restarted and why.
 * One htdemucs session at a time (the dead one is gone before the next loads).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InMemoryBus } from '@stemflow/bus';
import type { EventOf } from '@stemflow/contracts';
import { startDecoder } from '@stemflow/decoder';
import { createJob, storeInput } from '@stemflow/gateway';
import { EmbeddedJobStore } from '@stemflow/jobs';
import { loadEngine, startSeparator } from '@stemflow/separator';
import { MODEL_NICE } from '@stemflow/separator/core';
import { startStatus } from '@stemflow/status';
import { FsBlobStore, readObject } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { expect, it } from 'vitest';
import { until } from '../support/wait.js';
import { decodedFrames, mixtureWav } from '../support/jobs-http.js';

const log = createLogger('worker-death', 'silent');


it('the model worker killed mid-job: a new one is started and the job resumes from its checkpoint', { timeout: 180_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'worker-death-'));
  const blobs = new FsBlobStore(join(root, 'objects'));
  const jobs = await EmbeddedJobStore.open(join(root, 'jobs.jsonl'));
  const bus = new InMemoryBus({ log });
  const status = await startStatus({ bus, blobs, jobs }, log);
  const decoder = await startDecoder({ bus, blobs, log }, { maxDurationSec: 120 });
  const { engine, health, models } = await loadEngine({ device: 'cpu', threads: 0, memArena: false, quality: 'full', log });
  const runner = models.current;
  // The model's threads yield to the event loop: they run niced, the main thread does not.
  const nice = () => readdirSync('/proc/self/task').map((t) => [readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim(), Number(readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ')[16])] as const);
  expect(nice().find(([name]) => name === 'MainThread')?.[1] ?? nice()[0]![1]).toBe(0);
  expect(nice().filter(([, n]) => n === MODEL_NICE).length).toBeGreaterThanOrEqual(2); // the worker and ORT's intra-op thread
  const separator = await startSeparator({ bus, blobs, log, engine });
  const chunks: number[] = [];
  let count = 0;
  await bus.subscribe({ name: 'test.progress', bindings: ['job.progress'], prefetch: 256, retry: { maxAttempts: 1, delaysMs: [1000] }, stage: 'test', failJobOnGiveUp: false, description: 'test' }, {
    'job.progress': async (e: EventOf<'job.progress'>) => void (e.payload.chunk && chunks.push(e.payload.chunk.index) && (count = e.payload.chunk.count)),
  });
  try {
    // 20 s: four model chunks (7.8 s, a quarter overlapping).
    const { wav, frames } = await mixtureWav(20);
    const id = crypto.randomUUID();
    const upload = await storeInput(blobs, id, 'song.wav', Readable.from(wav), { maxBytes: 1 << 26 });
    await createJob({ bus, blobs, jobs, log }, id, { upload }, { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 }, null);

    // The first chunk is checkpointed (its progress is published after the checkpoint): the worker dies during the second.
    await until('the first chunk', () => chunks.length >= 1, 120_000);
    const first = runner.current;
    await first.terminate();
    expect(first.dead?.message).toBe('the model worker was terminated');

    const job = await until('the job to end', async () => ((j) => (j && ['completed', 'failed', 'canceled'].includes(j.status) ? j : undefined))(await jobs.get(id)), 150_000);
    expect([job.status, job.error_message]).toEqual(['completed', null]);
    // Resumed, not started over: every chunk computed once.
    expect(count).toBe(4);
    expect([...chunks].sort()).toEqual([0, 1, 2, 3]);
    expect(runner.current).not.toBe(first);
    expect(runner.restarts).toBe(1);
    expect((await health.check()).detail).toMatch(/restarted 1× \(last: the model worker was terminated\)/);
    for (const s of job.stems) expect(decodedFrames(await readObject(blobs, s.key))).toBe(frames);
  } finally {
    await separator.stop();
    await engine.close();
    await decoder.stop();
    await status.stop();
    await bus.close();
    rmSync(root, { recursive: true, force: true });
  }
});
