/**
 * A job's end is a fence, on the real broker, S3 server and database: deleted while its model runs
 * (a slow device: the tiny model behind a delay) with stems streaming as FLAC, within two seconds
 * no encoder of it runs, and nothing is left under its prefix — no checkpoint written after the
 * answer, no piece; every route answers 404. (The separator runs in this process, so its ffmpeg
 * children are this process's.)
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RabbitBus } from '@stemflow/bus';
import { QUEUES, type QueueSpec } from '@stemflow/contracts';
import { ort } from '@stemflow/models';
import { HtdemucsEngine, startSeparator } from '@stemflow/separator';
import { createLogger } from '@stemflow/telemetry';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toneWav } from '../../support/audio.js';
import { startCluster, type Cluster } from '../../support/cluster.js';
import { eventually } from '../../support/env.js';
import { uploadJob } from '../../support/jobs-http.js';
import { deleteQueues, withChannel } from '../../support/rabbit.js';

const tiny = fileURLToPath(new URL('../../../models/tiny/tiny-htdemucs.onnx', import.meta.url));
let c: Cluster;
beforeAll(async () => {
  c = await startCluster({ services: ['status', 'decoder', 'gateway'] });
}, 120_000);
afterAll(async () => {
  await c?.stop();
});

const ffmpegChildren = () => execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('ffmpeg')).length;

it('a job deleted while it separates: its encoders gone within 2 s, nothing under its prefix, 404 everywhere', { timeout: 120_000 }, async () => {
  const q: QueueSpec = { ...QUEUES.separator, name: `test.sep.${uuidv7()}`, retry: { maxAttempts: 3, delaysMs: [300, 600] } };
  const session = await ort.InferenceSession.create(tiny);
  let running = 0;
  const engine = new (class extends HtdemucsEngine {
    override async infer(p: Parameters<HtdemucsEngine['infer']>[0]) {
      running++;
      await new Promise((r) => setTimeout(r, 1500)); // a slow device: the delete lands mid-run
      return super.infer(p);
    }
  })(session);
  const bus = await RabbitBus.connect({ url: c.env.AMQP_URL! });
  const sep = await startSeparator({ bus, blobs: c.blobs, log: createLogger('sep', 'silent'), engine }, q);
  try {
    const id = await uploadJob(c.api, { name: 'long.wav', data: await toneWav(60, 220) }, { clip: 'clamp', format: 'flac' });
    // Separating, with the stems' encoders running (the first chunk is in the model).
    await eventually(async () => running >= 2 && ffmpegChildren() > 0, { timeoutMs: 60_000, what: 'the separation and its encoders under way' });
    const r = await fetch(`${c.api}/api/jobs/${id}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    const answered = Date.now();
    await eventually(async () => ffmpegChildren() === 0, { timeoutMs: 2000, intervalMs: 50, what: 'no encoder left' });
    expect(Date.now() - answered).toBeLessThan(2000);
    // The model run in flight ends, and whatever it was about to store is not stored or is removed.
    const runsAtDelete = running;
    await new Promise((r) => setTimeout(r, 4000));
    expect(running - runsAtDelete).toBeLessThanOrEqual(1); // at most the run in flight
    expect(await c.blobs.list(`jobs/${id}/`)).toEqual([]);
    for (const path of ['', '/events', '/stems/vocals', '/stems.zip']) expect((await fetch(`${c.api}/api/jobs/${id}${path}`)).status, path).toBe(404);
  } finally {
    await sep.stop();
    await bus.close();
    await withChannel((ch) => deleteQueues(ch, q));
  }
});
