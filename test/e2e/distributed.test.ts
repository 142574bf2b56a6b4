/**
 * stemflow end to end on the real engines, each service its own process: a generated 20 s song
 * goes in over HTTP, progress comes back over SSE, four stems come out that decode to the input's
 * length, the webhook service POSTs the signed job.completed to the job's callback, and Jaeger
 * holds one trace of the job with spans from all five services. Then the
 * separator is SIGKILLed mid-job and the restarted one resumes from its checkpoint.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineEnv, eventually, unique } from '../support/env.js';
import { expectFourStems, followSse, mixtureWav, uploadJob, type SseEvent } from '../support/jobs-http.js';
import { ServiceProcess } from '../support/processes.js';
import { purgeStemflowQueues } from '../support/rabbit.js';

const base = 18_000 + (process.pid % 1000) * 5;
const SECRET = 'distributed-test-webhook-secret-0123456789';
const env = (): Record<string, string> => ({
  AMQP_URL: engineEnv('AMQP_URL'),
  S3_ENDPOINT: engineEnv('S3_ENDPOINT'),
  S3_ACCESS_KEY: engineEnv('S3_ACCESS_KEY'),
  S3_SECRET_KEY: engineEnv('S3_SECRET_KEY'),
  S3_BUCKET: unique('e2e').toLowerCase(),
  DATABASE_URL: engineEnv('DATABASE_URL').replace(/\/[^/]*$/, `/${unique('e2e').replace(/-/g, '_')}`),
  OTEL_EXPORTER_OTLP_ENDPOINT: engineEnv('OTEL_EXPORTER_OTLP_ENDPOINT'),
  OTEL_BSP_SCHEDULE_DELAY: '500',
  LOG_LEVEL: 'info',
  // Gateway and webhook service share the secret; loopback is where the test's receiver listens.
  WEBHOOK_SECRET: SECRET,
  OUTBOUND_ALLOW_CIDRS: '127.0.0.1/32',
});

let services: Record<'gateway' | 'decoder' | 'separator' | 'status' | 'webhooks', ServiceProcess>;
const hooks: { headers: Record<string, string>; body: string }[] = [];
let receiver: Server;
let callback: string;
let api: string;
let wav: Buffer;
const frames = 20 * 44100;

beforeAll(async () => {
  // Earlier tests leave events for jobs of their own in the shared queues: start clean (this
  // file alone, too: queues not declared yet are nothing to purge).
  await purgeStemflowQueues();
  const e = env();
  services = {
    status: new ServiceProcess('status', e, base),
    decoder: new ServiceProcess('decoder', e, base + 1),
    separator: new ServiceProcess('separator', e, base + 2),
    gateway: new ServiceProcess('gateway', e, base + 3),
    webhooks: new ServiceProcess('webhooks', e, base + 4),
  };
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({ headers: req.headers as Record<string, string>, body });
      res.writeHead(200).end();
    });
  });
  callback = await new Promise<string>((r) => receiver.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/stemflow`)));
  await Promise.all(Object.values(services).map((s) => s.start()));
  api = `http://127.0.0.1:${base + 3}`;
  ({ wav } = await mixtureWav(20));
}, 120_000);

afterAll(async () => {
  await Promise.all(Object.values(services ?? {}).map((s) => s.kill('SIGTERM')));
  receiver?.close();
});

const upload = (name: string, format = 'wav16') => uploadJob(api, { name, data: wav }, { format });
const follow = (id: string, onEvent?: (e: SseEvent) => void) => followSse(api, id, onEvent);

describe('one job through five processes on the real engines', () => {
  let id: string;

  it('uploads, streams progress to completed, and serves four stems of the input length', async () => {
    id = await uploadJob(api, { name: 'e2e song.wav', data: wav }, { callback_url: callback });
    await expectFourStems(api, await follow(id), frames);
  });

  it('the webhook service POSTs the signed job.completed to the callback, and the job records it', async () => {
    const hook = await eventually(() => hooks.find((h) => h.body.includes(id)), { timeoutMs: 30_000, what: 'the webhook' });
    const { secret } = (await (await fetch(`${api}/api/webhooks/secret`)).json()) as { secret: string };
    const event = new Webhook(secret).verify(hook.body, hook.headers) as { type: string; data: { jobId: string; id: string } };
    expect([event.type, event.data.jobId, hook.headers['webhook-id']]).toEqual(['job.completed', id, event.data.id]);
    await eventually(async () => ((await (await fetch(`${api}/api/jobs/${id}`)).json()) as { webhook: { status: string } }).webhook.status === 'delivered', { what: 'the delivery recorded' });
  });

  it('every service serves Prometheus metrics of that job', async () => {
    const metrics = async (s: ServiceProcess) => (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    // The separator records a job's stage once it has also marked it completed and cleared its
    // work area, just after job.completed is out: wait for that, and for the status service's count.
    await eventually(async () => /stemflow_stage_duration_seconds_count\{stage="separate",outcome="ok"\} [1-9]/.test(await metrics(services.separator)), { what: 'the separation recorded' });
    await eventually(async () => /stemflow_stage_duration_seconds_count\{stage="total",outcome="completed"\} [1-9]/.test(await metrics(services.status)), { what: 'the total recorded' });
    const [gateway, decoder, separator, status] = await Promise.all([services.gateway, services.decoder, services.separator, services.status].map(metrics));
    expect(gateway).toMatch(/stemflow_http_request_duration_seconds_count\{method="POST",route="\/api\/jobs",status="201"\} [1-9]/);
    expect(decoder).toMatch(/stemflow_stage_duration_seconds_count\{stage="decode",outcome="ok"\} [1-9]/);
    expect(separator).toMatch(/stemflow_stage_duration_seconds_count\{stage="separate",outcome="ok"\} [1-9]/);
    expect(separator).toMatch(/stemflow_model_run_seconds_count\{device="cpu"\} [1-9]/);
    expect(separator).toMatch(/stemflow_separation_realtime_factor_count\{device="cpu"\} [1-9]/);
    expect(status).toMatch(/stemflow_jobs\{status="completed"\} [1-9]/);
    expect(status).toMatch(/stemflow_stage_duration_seconds_count\{stage="total",outcome="completed"\} [1-9]/);
    for (const text of [gateway, decoder, separator, status]) expect(text).toMatch(/stemflow_queue_depth\{queue="separator\.job-decoded"\} 0/);
  });

  it('is one trace in Jaeger: from the HTTP request through S3, MongoDB, the messages and every chunk', async () => {
    type Span = { spanID: string; operationName: string; processID: string; references: { refType: string; spanID: string }[]; tags: { key: string; value: unknown }[] };
    const jaeger = engineEnv('JAEGER_QUERY_URL');
    const s3Port = new URL(engineEnv('S3_ENDPOINT')).port;
    const trace = await eventually(async () => {
      const q = new URLSearchParams({ service: 'stemflow-separator', tags: JSON.stringify({ 'stemflow.job_id': id }), limit: '5' });
      const body = (await (await fetch(`${jaeger}/api/traces?${q}`)).json()) as { data: { traceID: string; spans: Span[]; processes: Record<string, { serviceName: string }> }[] };
      const t = body.data[0];
      if (!t) return undefined;
      const names = new Set(Object.values(t.processes).map((p) => p.serviceName));
      const ops = new Set(t.spans.map((s) => s.operationName));
      const complete = ['POST /api/jobs', 'publish job.created', 'decoder.job-created process job.created', 'separator.job-decoded process job.decoded', 'status.job-events process job.completed', 'webhooks.job-events process job.completed'].every((o) => ops.has(o));
      return complete && ['stemflow-gateway', 'stemflow-decoder', 'stemflow-separator', 'stemflow-status', 'stemflow-webhooks'].every((n) => names.has(n)) ? t : undefined;
    }, { timeoutMs: 30_000, what: 'a complete trace with all five services' });
    const service = (s: Span) => trace.processes[s.processID]!.serviceName;
    const tag = (s: Span, ...keys: string[]) => s.tags.find((t) => keys.includes(t.key))?.value;
    const spans = trace.spans;
    const ops = spans.map((s) => s.operationName);

    // It starts at the gateway's HTTP server span; the job's first message is that request's child.
    const root = spans.find((s) => s.operationName === 'POST /api/jobs')!;
    expect(service(root)).toBe('stemflow-gateway');
    expect(root.references).toEqual([]);
    const publish = spans.find((s) => s.operationName === 'publish job.created')!;
    const ancestors = (s: Span): string[] => {
      const parent = s.references.find((r) => r.refType === 'CHILD_OF')?.spanID;
      const p = parent ? spans.find((x) => x.spanID === parent) : undefined;
      return p ? [p.spanID, ...ancestors(p)] : [];
    };
    expect(ancestors(publish)).toContain(root.spanID);

    // The object store's requests (the upload, the decoder's and separator's reads and writes) and
    // the database's commands, as client spans of the services that made them.
    const s3 = spans.filter((s) => tag(s, 'span.kind') === 'client' && String(tag(s, 'server.port', 'net.peer.port', 'url.full', 'http.url') ?? '').includes(s3Port));
    const mongo = spans.filter((s) => tag(s, 'db.system', 'db.system.name') === 'mongodb');
    expect(new Set(s3.map(service))).toEqual(new Set(['stemflow-gateway', 'stemflow-decoder', 'stemflow-separator', 'stemflow-webhooks']));
    expect(new Set(mongo.map(service))).toContain('stemflow-gateway');
    expect(new Set(mongo.map(service))).toContain('stemflow-status');

    expect(ops).toContain('decoder.job-created process job.created');
    expect(ops).toContain('separator.job-decoded process job.decoded');
    expect(ops.filter((o) => o.startsWith('separate chunk ')).length).toBeGreaterThanOrEqual(3);
    expect(ops).toContain('status.job-events process job.completed');
    // The delivery: the webhook service's POST to the receiver, a client span under its consumer span.
    const deliver = spans.find((s) => s.operationName === 'webhooks.job-events process job.completed')!;
    const post = spans.find((s) => service(s) === 'stemflow-webhooks' && tag(s, 'span.kind') === 'client' && tag(s, 'http.request.method', 'http.method') === 'POST');
    expect(post, 'the webhook POST as a client span').toBeDefined();
    expect(ancestors(post!)).toContain(deliver.spanID);
    console.info(`trace ${trace.traceID}: ${spans.length} spans (${s3.length} S3, ${mongo.length} MongoDB), ${new Set(ops).size} operations`);
  });

  it('resumes from the last checkpoint when the separator is SIGKILLed mid-job; a client listening from the start gets the finished stem', async () => {
    // Other options than the first job: the same bytes and options would reuse its stems. clamp:
    // the stems stream while the job runs.
    const second = await uploadJob(api, { name: `resume-${uuidv7()}.wav`, data: wav }, { format: 'wav24', clip: 'clamp' });
    let killed = false;
    const events = follow(second, (e) => {
      // After the first chunk is checkpointed, kill the separator and start a new one.
      if (!killed && e.data.stage === 'separating' && e.data.progress > 0.1) {
        killed = true;
        void services.separator.kill('SIGKILL').then(() => services.separator.start());
      }
    });
    const job = async () => (await (await fetch(`${api}/api/jobs/${second}`)).json()) as { live_stems: { url: string }[]; stems: { url: string }[] };
    const liveUrl = await eventually(async () => (await job()).live_stems[0]?.url, { timeoutMs: 60_000, what: 'a live stem' });
    const listening = fetch(`${api}${liveUrl}`).then(async (r) => ({ live: r.headers.get('x-stemflow-live'), bytes: Buffer.from(await r.arrayBuffer()) }));
    const done = await events;
    expect(killed).toBe(true);
    expect(done.at(-1)!.event).toBe('completed');
    expect(services.separator.log).toMatch(/resuming from checkpoint/);
    const heard = await listening;
    expect(heard.live).toBe('true');
    const finished = Buffer.from(await (await fetch(`${api}${(await job()).stems[0]!.url}`)).arrayBuffer());
    expect(heard.bytes.length).toBe(finished.length);
    expect(heard.bytes.equals(finished)).toBe(true);
  });
});
