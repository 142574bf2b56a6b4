/**
 * Each service SIGKILLed mid-job and restarted, each engine stopped and started during a job, on
 * the real engines with every service its own process: every accepted job reaches `completed`
 * exactly once (one job.completed on the exchange, one final document), the separator resumes
 * from its checkpoint, and a gateway killed mid-upload leaves nothing once its sweep has run.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engine } from '../support/engines.js';
import { orphanObjects, startCluster, type Cluster } from '../support/cluster.js';
import { expectFourStems, followSse, mixtureWav, uploadJob, type SseEvent } from '../support/jobs-http.js';
import { pausableProxy } from '../support/proxy.js';
import { s3Client } from '../support/s3.js';
import { engineEnv, eventually } from '../support/env.js';
import { objectKeys } from '@stemflow/contracts';

let c: Cluster;
let proxy: Awaited<ReturnType<typeof pausableProxy>>;
let song: { wav: Buffer; frames: number };
let n = 0;

beforeAll(async () => {
  // The decoder reaches the store through a proxy the test can freeze: "mid-decode" on demand.
  proxy = await pausableProxy(new URL(engineEnv('S3_ENDPOINT')));
  c = await startCluster({ env: { UPLOAD_ORPHAN_GRACE_SEC: '3', MAX_UPLOAD_BYTES: String(200 << 20) }, serviceEnv: { decoder: { S3_ENDPOINT: proxy.url } } });
  song = await mixtureWav(12);
}, 180_000);
afterAll(async () => {
  await c?.stop();
  await proxy?.close();
});

/** A fresh job (other bytes each time, so none is deduplicated), followed over SSE. */
async function job(onEvent?: (e: SseEvent, id: string) => void) {
  const wav = Buffer.from(song.wav);
  wav.writeInt16LE(++n, wav.length - 2); // the last sample differs per job
  const id = await uploadJob(c.api, { name: `chaos-${n}.wav`, data: wav });
  const events = await followSse(c.api, id, (e) => onEvent?.(e, id));
  return { id, events };
}

/** Exactly once: one job.completed on the exchange (after a grace for late duplicates), one final document. */
async function expectCompletedOnce(id: string) {
  await eventually(() => (c.terminal.get(id)?.length ?? 0) >= 1, { timeoutMs: 30_000, what: `job.completed of ${id} on the exchange` });
  await new Promise((r) => setTimeout(r, 2000));
  expect(c.terminal.get(id)!.map((e) => e.type)).toEqual(['job.completed']);
  const doc = (await c.jobs.get(id))!;
  expect(doc.status).toBe('completed');
  expect(doc.progress).toBe(1);
  expect(doc.stems.map((s) => s.name)).toEqual(['drums', 'bass', 'other', 'vocals']);
}

const health = async (port: number) => (await fetch(`http://127.0.0.1:${port}/api/health`).catch(() => undefined))?.status;

describe('a service SIGKILLed mid-job, then restarted', () => {
  it('the decoder, mid-decode: the job is delivered again and completes once', { timeout: 180_000 }, async () => {
    proxy.pause();
    const before = proxy.connections();
    let killed = false;
    const run = job();
    // The decoder took the job and hangs reading the input through the frozen proxy: kill it.
    await eventually(() => proxy.connections() > before, { timeoutMs: 30_000, what: 'the decoder reading the input' });
    await new Promise((r) => setTimeout(r, 300));
    await c.services.decoder!.kill('SIGKILL');
    killed = true;
    proxy.resume();
    await c.services.decoder!.start();
    const { id, events } = await run;
    expect(killed).toBe(true);
    await expectFourStems(c.api, events, song.frames);
    await expectCompletedOnce(id);
  });

  it('the separator, mid-chunk: the new one resumes from the last checkpoint', { timeout: 180_000 }, async () => {
    let killed: Promise<void> | undefined;
    const { id, events } = await job((e) => {
      if (!killed && e.data.stage === 'separating' && e.data.progress > 0.1) {
        killed = c.services.separator!.kill('SIGKILL').then(() => c.services.separator!.start());
      }
    });
    expect(killed).toBeDefined();
    await killed;
    expect(events.at(-1)!.event).toBe('completed');
    // It resumed after whichever chunk was checkpointed last, instead of starting over.
    expect(c.services.separator!.log).toMatch(new RegExp(`"jobId":"${id}","pass":0,"resumeAfter":\\d+,"msg":"resuming from checkpoint"`));
    await expectCompletedOnce(id);
  });

  it('the separator holding two jobs on one engine (SEPARATOR_CONCURRENCY=2), one mid-chunk: both are delivered again, the first resumes from its checkpoint, both complete once', { timeout: 300_000 }, async () => {
    const sep = c.services.separator!;
    await sep.kill('SIGTERM');
    sep.env.SEPARATOR_ENGINES = '1';
    sep.env.SEPARATOR_CONCURRENCY = '2';
    await sep.start();
    try {
      const progress = new Map<string, number>();
      const ids = new Set<string>();
      const watch = (e: SseEvent, id: string) => {
        ids.add(id);
        if (e.data.stage === 'separating') progress.set(id, e.data.progress);
      };
      const running = Promise.all([job(watch), job(watch)]);
      // Killed once one job has a chunk checkpointed (its next is running) and the separator has
      // taken the other (its plan is stored): the earlier job's runs go first, so the later one's
      // first run is waiting for the engine.
      const first = await eventually(async () => {
        const [a] = [...progress].find(([, p]) => p > 0.1) ?? [];
        const b = [...ids].find((id) => id !== a);
        return a && b && (await c.blobs.head(objectKeys.plan(b))) ? a : undefined;
      }, { timeoutMs: 120_000, what: 'one job checkpointed, the other taken' });
      await sep.kill('SIGKILL');
      await sep.start();
      const jobs = await running;
      expect(sep.log).toMatch(new RegExp(`"jobId":"${first}","pass":0,"resumeAfter":\\d+,"msg":"resuming from checkpoint"`));
      for (const { id, events } of jobs) {
        expect(events.at(-1)!.event).toBe('completed');
        await expectFourStems(c.api, events, song.frames);
        await expectCompletedOnce(id);
      }
    } finally {
      delete sep.env.SEPARATOR_ENGINES;
      delete sep.env.SEPARATOR_CONCURRENCY;
      await sep.kill('SIGTERM');
      await sep.start();
    }
  });

  it('the status service, mid-stream: the read model catches up, nothing lost', { timeout: 180_000 }, async () => {
    let killed: Promise<void> | undefined;
    const run = job((e) => {
      if (!killed && e.data.stage === 'separating') {
        killed = c.services.status!.kill('SIGKILL').then(async () => {
          await new Promise((r) => setTimeout(r, 3000));
          await c.services.status!.start();
        });
      }
    });
    const { id, events } = await run;
    await killed;
    expect(events.at(-1)!.event).toBe('completed');
    await expectCompletedOnce(id);
  });

  it('the gateway, mid-upload: no job, and no object once the restarted gateway has swept', { timeout: 120_000 }, async () => {
    const jobsBefore = (await c.jobs.list({ limit: 100 })).items.length;
    const url = new URL(c.api);
    const boundary = 'killtest';
    const total = 40 << 20;
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/api/jobs', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(total + 200) } });
    req.on('error', () => {});
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
    req.write(song.wav);
    const block = Buffer.alloc(1 << 20, 3);
    let sent = song.wav.length;
    // 25 MiB: more than one 16 MiB multipart part is in the store, the upload is unfinished.
    while (sent < 25 << 20) {
      if (!req.write(block)) await new Promise((r) => req.once('drain', r));
      sent += block.length;
    }
    const incomplete = async () => (await s3Client().listIncompleteUploadsQuery(c.env.S3_BUCKET!, 'jobs/', '', '', '')).uploads.length;
    await eventually(async () => (await incomplete()) > 0, { timeoutMs: 20_000, what: 'a multipart upload under way' });
    await c.services.gateway!.kill('SIGKILL');
    req.destroy();
    expect(await incomplete()).toBeGreaterThan(0); // what the dead gateway left
    await c.services.gateway!.start();
    await eventually(async () => (await incomplete()) === 0 && (await orphanObjects(c)).length === 0, { timeoutMs: 30_000, what: 'the sweep to remove the unfinished upload' });
    expect((await c.jobs.list({ limit: 100 })).items.length).toBe(jobsBefore);
    expect(c.services.gateway!.log).toMatch(/removed what interrupted uploads left behind/);
  });
});

describe('an engine stopped and started during a job', () => {
  const outage = (name: 'rabbitmq' | 's3' | 'mongo', dependency: string) =>
    it(`${name}: the services report not ready, reconnect, and finish the job once`, { timeout: 240_000 }, async () => {
      let down: Promise<void> | undefined;
      let sawNotReady = false;
      const run = job((e) => {
        if (!down && e.data.stage === 'separating') {
          down = (async () => {
            await engine('down', name);
            await eventually(async () => {
              const r = await fetch(`${c.api}/api/health`).catch(() => undefined);
              if (r?.status !== 503) return false;
              const body = (await r.json()) as { dependencies: { name: string; ok: boolean }[] };
              return body.dependencies.find((d) => d.name === dependency)?.ok === false;
            }, { timeoutMs: 30_000, what: `the gateway to report ${dependency} down` });
            sawNotReady = true;
            await new Promise((r) => setTimeout(r, 3000));
            await engine('up', name);
          })();
        }
      });
      try {
        const { id } = await Promise.race([run, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the job did not end within 150 s of the ${name} outage`)), 150_000))]);
        await down;
        expect(sawNotReady).toBe(true);
        await eventually(async () => (await c.jobs.get(id))?.status === 'completed', { timeoutMs: 30_000, what: `job ${id} completed in the read model` });
        await expectCompletedOnce(id);
      } catch (err) {
        const tail = (s: string) => s.split('\n').filter((l) => !l.includes('"level":20')).slice(-25).join('\n');
        throw new Error(`${(err as Error).message}\n--- separator ---\n${tail(c.services.separator!.log)}\n--- status ---\n${tail(c.services.status!.log)}`);
      }
      for (const s of Object.values(c.services)) await eventually(async () => (await health(s!.port)) === 200, { timeoutMs: 60_000, what: `${s!.name} ready again` });
    });
  outage('s3', 'store');
  outage('rabbitmq', 'broker');
  outage('mongo', 'database');
});
