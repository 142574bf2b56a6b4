/**
 * The webhook service on the real broker, object store and database: signed deliveries (checked
 * with the Standard Webhooks library, as a receiver would), retries through the bus's own retry
 * queues with one webhook-id, parking in the .dlq, and the job's record saying how it went.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { newEvent, RabbitBus } from '@stemflow/bus';
import { QUEUES, parkingQueueName, type AnyEvent, type EventOf, type QueueSpec } from '@stemflow/contracts';
import { jobFromCreated } from '@stemflow/jobs';
import { addressPolicy, webhookSecret } from '@stemflow/net';
import { S3BlobStore, writeWebhookTarget } from '@stemflow/storage';
import { createLogger, renderMetrics } from '@stemflow/telemetry';
import { startWebhooks } from '@stemflow/webhooks';
import { Webhook } from 'standardwebhooks';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLifecycle } from '../../support/events.js';
import { engineEnv, eventually, unique } from '../../support/env.js';
import { deleteQueues, withChannel } from '../../support/rabbit.js';
import { dropQueue, mongoUrl, statusQueue, statusReplica } from '../../support/status.js';

const SECRET = 'test-master-secret-of-at-least-32-characters';
const OWNER = 'key-abc';
const queue: QueueSpec = { ...QUEUES.webhooks, name: `test.webhooks.${uuidv7()}`, retry: { maxAttempts: 3, delaysMs: [300, 600] } };
const tap: QueueSpec = { name: `test.webhook-tap.${uuidv7()}`, bindings: ['job.webhook'], prefetch: 50, retry: { maxAttempts: 1, delaysMs: [100] }, stage: 't', failJobOnGiveUp: false, description: 'test' };
const statusQ = statusQueue({ maxAttempts: 5, delaysMs: [200] });
const bucket = unique('wh').toLowerCase();
const blobs = new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket });
let bus: RabbitBus;
let svc: { stop: () => Promise<void> };
let status: Awaited<ReturnType<typeof statusReplica>>;
const reports: EventOf<'job.webhook'>[] = [];

beforeAll(async () => {
  bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL'), queues: [queue, tap] });
  await bus.subscribe(tap, { 'job.webhook': async (e) => void reports.push(e) });
  status = await statusReplica(statusQ, mongoUrl());
  svc = await startWebhooks({ bus, blobs, log: createLogger('webhooks', 'silent') }, { secret: SECRET, policy: addressPolicy(['127.0.0.1/32']), timeoutMs: 800, queue });
});
afterAll(async () => {
  await svc.stop();
  await status.stop();
  await bus.close();
  await blobs.deletePrefix('');
  await withChannel((ch) => deleteQueues(ch, queue));
  await withChannel((ch) => deleteQueues(ch, tap));
  await dropQueue(statusQ);
});

type Received = { headers: IncomingMessage['headers']; body: string };
/** A receiver on loopback; `answer` decides each response from the number of the request (1-based). */
async function receiver(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void, port = 0) {
  const got: Received[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(got.length, req, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    got,
    port: (server.address() as AddressInfo).port,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/stemflow?token=t0ps3cret`,
    /** Stops listening and cuts every connection, as a killed process would. */
    kill: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A job whose document exists (the gateway's insert) and whose webhook target is stored. */
async function jobWithWebhook(url: string | undefined): Promise<AnyEvent[]> {
  const life = jobLifecycle(uuidv7());
  const created = life[0] as EventOf<'job.created'>;
  if (url) {
    created.payload.webhook = { url: 'http://127.0.0.1/redacted' };
    await writeWebhookTarget(blobs, created.jobId, { url, owner: OWNER });
  }
  await status.jobs.create(jobFromCreated(created));
  return life;
}
const verify = (r: Received, owner = OWNER) =>
  new Webhook(webhookSecret(SECRET, owner)).verify(r.body, { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) });
const counted = async (outcome: string) => Number(new RegExp(`stemflow_webhook_attempts_total\\{outcome="${outcome}"\\} (\\d+)`).exec((await renderMetrics()).body)?.[1] ?? 0);
/** The job's final report (delivered or failed); every attempt is in reportsOf. */
const reportFor = (jobId: string) => eventually(() => reports.find((e) => e.jobId === jobId && e.payload.outcome !== 'retrying'), { timeoutMs: 20_000, what: `job.webhook for ${jobId}` });
const reportsOf = (jobId: string) => reports.filter((e) => e.jobId === jobId);

describe('webhook deliveries', () => {
  it('retries a receiver that answers 500 twice, with one webhook-id and valid signatures, until its 200', async () => {
    const rx = await receiver((n, _q, res) => res.writeHead(n <= 2 ? 500 : 200).end(n <= 2 ? 'try later' : 'ok'));
    try {
      const life = await jobWithWebhook(rx.url);
      for (const e of life) await bus.publish(e);
      const completed = life[5] as EventOf<'job.completed'>;
      const report = await reportFor(completed.jobId);
      expect(report.payload).toMatchObject({ outcome: 'delivered', event: 'job.completed', webhookId: completed.id, attempts: 3, status: 200 });
      expect(report.payload.url).not.toContain('t0ps3cret'); // the query (a token) is not recorded
      expect(rx.got).toHaveLength(3);
      expect(new Set(rx.got.map((r) => r.headers['webhook-id']))).toEqual(new Set([completed.id]));
      for (const r of rx.got) {
        expect(verify(r)).toEqual({ type: 'job.completed', timestamp: completed.occurredAt, data: JSON.parse(JSON.stringify(completed)) });
        expect(r.headers['content-type']).toBe('application/json');
      }
      expect(await counted('retry')).toBeGreaterThanOrEqual(2);
      expect(await counted('delivered')).toBeGreaterThanOrEqual(1);
      // Another key's secret does not verify it: keys cannot forge each other's deliveries.
      expect(() => verify(rx.got[0]!, 'key-other')).toThrow();
      const job = await eventually(async () => {
        const j = await status.jobs.get(completed.jobId);
        return j?.webhook?.status === 'delivered' ? j : undefined;
      }, { what: 'the read model records the delivery' });
      expect(job.webhook).toEqual({ url: report.payload.url, status: 'delivered', attempts: 3, last_status: 200, last_error: null, next_attempt_at: null });
      // Each failed attempt was recorded as it happened: what the receiver said, when the next would come.
      const retrying = reportsOf(completed.jobId).filter((e) => e.payload.outcome === 'retrying');
      expect(retrying.map((e) => [e.payload.attempts, e.payload.status, e.payload.reason])).toEqual([
        [1, 500, 'the receiver answered HTTP 500: try later'],
        [2, 500, 'the receiver answered HTTP 500: try later'],
      ]);
      expect(Date.parse(retrying[0]!.payload.nextAttemptAt!)).toBeGreaterThan(Date.parse(retrying[0]!.occurredAt));
      expect(job.status).toBe('completed');
    } finally {
      await rx.kill();
    }
  });

  it('parks what a receiver that never answers does not take, and the job says the delivery failed', async () => {
    const rx = await receiver(() => {}); // holds every request open
    try {
      const life = await jobWithWebhook(rx.url);
      const failed = newEvent('job.failed', life[0]!.jobId, { stage: 'decoding', reason: 'The file is not audio.', code: 'NOT_AUDIO', retryable: false });
      await bus.publish(life[0]!);
      await bus.publish(failed);
      const report = await reportFor(failed.jobId);
      expect(report.payload).toMatchObject({ outcome: 'failed', event: 'job.failed', webhookId: failed.id, attempts: 3 });
      expect(report.payload.reason).toMatch(/did not finish answering within 1 s/);
      expect(rx.got.map((r) => r.headers['webhook-id'])).toEqual([failed.id, failed.id, failed.id]);
      const parked = await eventually(() =>
        withChannel(async (ch) => {
          const m = await ch.get(parkingQueueName(queue.name), { noAck: true });
          return m ? (JSON.parse(m.content.toString()) as AnyEvent) : undefined;
        }),
      );
      expect(parked.id).toBe(failed.id);
      const job = await eventually(async () => {
        const j = await status.jobs.get(failed.jobId);
        return j?.webhook?.status === 'failed' ? j : undefined;
      }, { what: 'the read model records the failure' });
      expect(job.webhook?.attempts).toBe(3);
      expect(job.webhook?.last_error).toMatch(/did not finish answering/);
      expect(job.status).toBe('failed');
    } finally {
      await rx.kill();
    }
  });

  it('a receiver that answers 302 every time: each attempt recorded on the job as it happens, then failed with its status', async () => {
    const rx = await receiver((_n, _q, res) => res.writeHead(302, { location: 'http://127.0.0.1:9/elsewhere' }).end());
    try {
      const life = await jobWithWebhook(rx.url);
      const failed = newEvent('job.failed', life[0]!.jobId, { stage: 'decoding', reason: 'The file is not audio.', code: 'NOT_AUDIO', retryable: false });
      await bus.publish(life[0]!);
      await bus.publish(failed);
      // While it retries, GET shows the attempts so far (this was {pending, 0 attempts} until the end).
      const during = await eventually(async () => {
        const j = await status.jobs.get(failed.jobId);
        return j?.webhook?.status === 'pending' && j.webhook.attempts >= 1 ? j : undefined;
      }, { what: 'the first attempt recorded' });
      expect(during.webhook).toMatchObject({ status: 'pending', last_status: 302, last_error: 'the receiver answered HTTP 302' });
      expect(during.webhook?.next_attempt_at).toEqual(expect.any(String));
      const report = await reportFor(failed.jobId);
      expect(report.payload).toMatchObject({ outcome: 'failed', attempts: 3, status: 302 });
      expect(rx.got).toHaveLength(3); // redirects are not followed
      const job = await eventually(async () => {
        const j = await status.jobs.get(failed.jobId);
        return j?.webhook?.status === 'failed' ? j : undefined;
      }, { what: 'the read model records the failure' });
      expect(job.webhook).toMatchObject({ attempts: 3, last_status: 302, last_error: 'the receiver answered HTTP 302', next_attempt_at: null });
    } finally {
      await rx.kill();
    }
  });

  it('a receiver slower than the timeout once, then quick: the slow attempt recorded, then delivered', async () => {
    const rx = await receiver((n, _q, res) => void setTimeout(() => res.writeHead(200).end('ok'), n === 1 ? 1500 : 0));
    try {
      const life = await jobWithWebhook(rx.url);
      const canceled = newEvent('job.canceled', life[0]!.jobId, {});
      await bus.publish(life[0]!);
      await bus.publish(canceled);
      const report = await reportFor(canceled.jobId);
      expect(report.payload).toMatchObject({ outcome: 'delivered', attempts: 2, status: 200 });
      const first = reportsOf(canceled.jobId).find((e) => e.payload.outcome === 'retrying');
      expect(first?.payload).toMatchObject({ attempts: 1, reason: expect.stringMatching(/did not finish answering within 1 s/) });
      expect(first?.payload.status).toBeUndefined();
    } finally {
      await rx.kill();
    }
  });

  it('delivers again to a receiver killed mid-delivery, once it is back', async () => {
    let rx = await receiver((_n, _q, _res) => void rx.kill()); // dies holding the first request
    const port = rx.port;
    const life = await jobWithWebhook(rx.url);
    const canceled = newEvent('job.canceled', life[0]!.jobId, {});
    await bus.publish(life[0]!);
    await bus.publish(canceled);
    await eventually(() => rx.got.length === 1, { what: 'the first attempt' });
    const first = rx.got;
    rx = await receiver((_n, _q, res) => res.writeHead(204).end(), port);
    try {
      const report = await reportFor(canceled.jobId);
      expect(report.payload).toMatchObject({ outcome: 'delivered', event: 'job.canceled', attempts: 2, status: 204 });
      expect([...first, ...rx.got].map((r) => r.headers['webhook-id'])).toEqual([canceled.id, canceled.id]);
      expect(verify(rx.got[0]!)).toMatchObject({ type: 'job.canceled', data: { id: canceled.id, jobId: canceled.jobId } });
    } finally {
      await rx.kill();
    }
  });

  it('sends nothing for a job without a webhook, and does not retry a target on a refused address', async () => {
    const plain = await jobWithWebhook(undefined);
    const refused = await jobWithWebhook('http://10.0.0.1/hook'); // refused before any connection
    for (const e of [...plain, ...refused]) await bus.publish(e);
    const report = await reportFor(refused[0]!.jobId);
    expect(report.payload).toMatchObject({ outcome: 'failed', attempts: 1 });
    expect(report.payload.reason).toMatch(/10\.0\.0\.1 is a private-network address/);
    // Both jobs' messages are settled (acked): the queue is empty, nothing parked.
    await eventually(async () => (await bus.depth(queue.name)) === 0, { what: 'the queue drained' });
    expect(reports.find((e) => e.jobId === plain[0]!.jobId)).toBeUndefined();
  });
});
