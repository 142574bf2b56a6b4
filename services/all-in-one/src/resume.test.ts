/**
 * A process killed before its jobs ran (the in-process bus lost their events): at the next start
 * each job is announced again as it was accepted — here, with the key's quota for the day, which
 * the decoder then enforces. Announced from the job's record alone, the quota was lost and the
 * job decoded past it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InMemoryBus } from '@stemflow/bus';
import { startDecoder } from '@stemflow/decoder';
import { createJob, storeInput } from '@stemflow/gateway';
import { EmbeddedJobStore } from '@stemflow/jobs';
import { startStatus } from '@stemflow/status';
import { FsBlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { expect, it } from 'vitest';
import { resumeInFlight } from './resume.js';

const log = createLogger('test', 'silent');
const song = execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=5', '-ac', '2', '-c:a', 'flac', '-f', 'flac', '-']);

it('a resumed job keeps the quota it was accepted with', { timeout: 30_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'resume-'));
  const blobs = new FsBlobStore(join(root, 'objects'));
  const jobs = await EmbeddedJobStore.open(join(root, 'jobs.jsonl'));
  // The first run: the job is accepted with 2 s of the key's minutes left, then the process dies.
  const first = new InMemoryBus({ log });
  const id = crypto.randomUUID();
  const upload = await storeInput(blobs, id, 'song.flac', Readable.from(song), { maxBytes: 1 << 24 });
  const job = await createJob({ bus: first, blobs, jobs, log }, id, { upload }, { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 }, 'key-a', { quota: { audioSecLeft: 2, minutesPerDay: 1 } });
  await first.close();

  // The next run: the same stores, a new bus, the workers, then the resume.
  const bus = new InMemoryBus({ log });
  const status = await startStatus({ bus, blobs, jobs }, log);
  const decoder = await startDecoder({ bus, blobs, log }, { maxDurationSec: 60 });
  try {
    expect(await resumeInFlight({ bus, jobs, blobs, log })).toBe(1);
    const ended = await until(async () => {
      const j = await jobs.get(job.id);
      return j?.status === 'failed' || (j?.input.duration_sec ?? 0) > 0 ? j : undefined; // failed, or decoded
    });
    expect([ended.status, ended.error_code]).toEqual(['failed', 'QUOTA_EXCEEDED']);
  } finally {
    await decoder.stop();
    await status.stop();
    await bus.close();
  }
});

async function until<T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}
