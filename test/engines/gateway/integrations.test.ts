/**
 * What services integrating stemflow rely on, on the real S3 server, RabbitMQ and FerretDB, with
 * two gateways sharing one database: idempotent submits, callback URLs, limits per API key (the
 * edges just under and just over, held across both gateways), usage, and import by URL with the
 * address guard. Every refusal leaves nothing in the store.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { newEvent, RabbitBus } from '@stemflow/bus';
import type { EventOf, QueueSpec } from '@stemflow/contracts';
import type { KeySettings } from '@stemflow/config';
import { ownerOf } from '@stemflow/gateway';
import { MongoJobStore, MongoLedger } from '@stemflow/jobs';
import { addressPolicy, webhookSecret } from '@stemflow/net';
import { S3BlobStore, readWebhookTarget } from '@stemflow/storage';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toneWav } from '../../support/audio.js';
import { engineEnv, eventually, unique } from '../../support/env.js';
import { form, serveGateway } from '../../support/gateway.js';
import { deleteQueues, withChannel } from '../../support/rabbit.js';
import { mongoUrl } from '../../support/status.js';

const SECRET = 'integration-test-master-secret-0123456789';
const KEYS = { a: 'key-a-000', b: 'key-b-000', c: 'key-c-000', d: 'key-d-000', e: 'key-e-000' };
const SETTINGS: Record<string, KeySettings> = {
  [KEYS.e]: { webhook_url: 'https://hooks.example.com/e' },
  [KEYS.b]: { max_concurrent_jobs: 2 },
  [KEYS.c]: { audio_minutes_per_day: 1 },
  [KEYS.d]: { requests_per_sec: 3 },
};
const bucket = unique('gwi').toLowerCase();
const db = mongoUrl();
const s3 = () => new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket });
const watch: QueueSpec = { name: `test.gwi.${uuidv7()}`, bindings: ['job.created'], prefetch: 100, retry: { maxAttempts: 1, delaysMs: [100] }, stage: 't', failJobOnGiveUp: false, description: 'test' };
let blobs: S3BlobStore;
let bus: RabbitBus;
let clock = Date.UTC(2026, 10, 30, 12, 0, 0, 100);
const created: EventOf<'job.created'>[] = [];
type Gw = Awaited<ReturnType<typeof serveGateway>> & { jobs: MongoJobStore; ledger: MongoLedger };
let gw1: Gw;
let gw2: Gw;
let wav: Buffer;

async function gateway(extra: Parameters<typeof serveGateway>[1] = {}): Promise<Gw> {
  const jobs = await MongoJobStore.connect(db);
  const ledger = await MongoLedger.connect(db);
  const g = await serveGateway(
    { bus, blobs, jobs },
    { maxUploadBytes: 2 * 1024 * 1024, apiKeys: Object.values(KEYS), keySettings: SETTINGS, ledger, policy: addressPolicy(['127.0.0.1/32']), webhookSecret: SECRET, now: () => clock, ...extra },
  );
  return { ...g, jobs, ledger, close: async () => (await g.close(), await jobs.close(), await ledger.close()) };
}

beforeAll(async () => {
  blobs = s3();
  bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL') });
  await bus.declare(watch);
  await bus.subscribe(watch, { 'job.created': async (e) => void created.push(e) });
  gw1 = await gateway();
  gw2 = await gateway();
  wav = await toneWav(1);
});
afterAll(async () => {
  await gw1.close();
  await gw2.close();
  await bus.close();
  await blobs.deletePrefix('');
  await withChannel((ch) => deleteQueues(ch, watch));
});

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const submit = (g: Gw, key: string, f: FormData | string, headers: Record<string, string> = {}) =>
  fetch(`${g.url}/api/jobs`, { method: 'POST', body: f, headers: { ...auth(key), ...(typeof f === 'string' ? { 'content-type': 'application/json' } : {}), ...headers } });
const upload = (name = 'song.wav', fields: Record<string, string> = {}, data = wav) => form({ name, data, type: 'audio/wav' }, fields);
const json = async (r: Response) => (await r.json()) as any;
const objects = async () => (await blobs.list('jobs/')).map((b) => b.key).sort();
const createdFor = (id: string) => eventually(() => created.find((e) => e.jobId === id), { what: `job.created of ${id}` });
/** Moves a job to completed in the read model, as the status service would. */
const complete = (g: Gw, id: string) => g.jobs.apply(newEvent('job.completed', id, { stems: [{ name: 'vocals', format: 'wav16', key: `jobs/${id}/stems/vocals.wav`, bytes: 1 }], model: 'htdemucs', timings: {} }));

describe('Idempotency-Key on POST /api/jobs', () => {
  it('the same key with the same upload returns the first job; another body under it is a 422 that keeps nothing', async () => {
    const key = uuidv7();
    const first = await submit(gw1, KEYS.a, upload(), { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const { id } = await json(first);
    await createdFor(id);
    const before = await objects();
    const again = await submit(gw2, KEYS.a, upload(), { 'idempotency-key': key }); // another gateway
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(again)).id).toBe(id);
    const other = await submit(gw1, KEYS.a, upload('song.wav', { format: 'flac' }), { 'idempotency-key': key });
    expect(other.status).toBe(422);
    expect((await json(other)).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await objects()).toEqual(before); // the replay's and the refused upload's objects are gone
    expect(created.filter((e) => e.jobId === id)).toHaveLength(1);
    // Keys are per API key: another key's same Idempotency-Key is a new job.
    const theirs = await submit(gw1, KEYS.c, upload(), { 'idempotency-key': key });
    expect(theirs.status).toBe(201);
    expect((await json(theirs)).id).not.toBe(id);
  });

  it('twenty concurrent requests with one key, over two gateways, create one job', async () => {
    const key = `race-${uuidv7()}`;
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(i % 2 ? gw1 : gw2, KEYS.a, upload(), { 'idempotency-key': key })));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(201));
    const ids = new Set(await Promise.all(answers.map(async (r) => (await json(r)).id as string)));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    await createdFor(id!);
    await eventually(async () => (await blobs.list('jobs/')).every((b) => !b.key.includes('/input/') || created.some((e) => b.key.startsWith(`jobs/${e.jobId}/`))), { what: 'the losers’ uploads removed' });
    expect(created.filter((e) => e.jobId === id)).toHaveLength(1);
  });

  it('refuses a key that is not 1-255 visible ASCII characters', async () => {
    const r = await submit(gw1, KEYS.a, upload(), { 'idempotency-key': 'x'.repeat(256) });
    expect([r.status, (await json(r)).code]).toEqual([400, 'INVALID_IDEMPOTENCY_KEY']);
  });
});

describe('callback_url and signing secrets', () => {
  it.each([
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/', 'URL_REFUSED', /link-local/],
    ['a private address', 'https://10.1.2.3/hook', 'URL_REFUSED', /private/],
    ['a loopback address the setting does not allow', 'http://127.0.0.2:9/hook', 'URL_REFUSED', /loopback/],
    ['an IPv4-mapped private address', 'http://[::ffff:192.168.0.1]/hook', 'URL_REFUSED', /private/],
    ['another scheme', 'ftp://example.com/hook', 'INVALID_URL', /ftp/],
    ['not a URL', 'hook please', 'INVALID_URL', /not a URL/],
  ])('refuses %s with a 400 that keeps nothing', async (_what, url, code, why) => {
    const before = await objects();
    const r = await submit(gw1, KEYS.a, upload('song.wav', { callback_url: url }));
    const body = await json(r);
    expect([r.status, body.code]).toEqual([400, code]);
    expect(body.detail).toMatch(why);
    expect(await objects()).toEqual(before);
  });

  it('stores an allowed callback (the record shows it redacted), and serves each key its own secret', async () => {
    const url = 'http://127.0.0.1:9/hooks?token=s3cr3t';
    const r = await submit(gw1, KEYS.a, upload('song.wav', { callback_url: url }));
    expect(r.status).toBe(201);
    const { id } = await json(r);
    expect((await createdFor(id)).payload.webhook).toEqual({ url: 'http://127.0.0.1:9/hooks?…' });
    expect(await readWebhookTarget(blobs, id)).toEqual({ url, owner: expect.stringMatching(/^key-/) });
    const view = await json(await fetch(`${gw1.url}/api/jobs/${id}`, { headers: auth(KEYS.a) }));
    expect(view.webhook).toEqual({ url: 'http://127.0.0.1:9/hooks?…', status: 'pending', attempts: 0, last_status: null, last_error: null, next_attempt_at: null });
    const a = await json(await fetch(`${gw1.url}/api/webhooks/secret`, { headers: auth(KEYS.a) }));
    const b = await json(await fetch(`${gw2.url}/api/webhooks/secret`, { headers: auth(KEYS.b) }));
    expect(a.secret).toBe(webhookSecret(SECRET, (await readWebhookTarget(blobs, id))!.owner));
    expect(a.secret).not.toBe(b.secret);
  });

  it("a key's configured webhook_url is every job's target, unless the job names its own", async () => {
    const plain = await json(await submit(gw1, KEYS.e, upload()));
    expect(await readWebhookTarget(blobs, plain.id)).toEqual({ url: 'https://hooks.example.com/e', owner: ownerOf(KEYS.e) });
    const own = await json(await submit(gw1, KEYS.e, upload('song.wav', { callback_url: 'http://127.0.0.1:9/mine' })));
    expect((await readWebhookTarget(blobs, own.id))!.url).toBe('http://127.0.0.1:9/mine');
    // Another key's jobs have no webhook.
    const other = await json(await submit(gw1, KEYS.a, upload('other.wav')));
    expect(await readWebhookTarget(blobs, other.id)).toBeUndefined();
  });

  it('a server without WEBHOOK_SECRET refuses callback_url', async () => {
    const g = await gateway({ webhookSecret: undefined });
    try {
      const r = await submit(g, KEYS.a, upload('song.wav', { callback_url: 'http://127.0.0.1:9/x' }));
      expect([r.status, (await json(r)).code]).toEqual([400, 'CALLBACK_UNSUPPORTED']);
      expect((await fetch(`${g.url}/api/webhooks/secret`, { headers: auth(KEYS.a) })).status).toBe(404);
    } finally {
      await g.close();
    }
  });
});

describe('limits per API key, held across two gateways', () => {
  it('concurrent jobs: the limit is accepted, one more is a 429 with Retry-After, a finished job frees its slot', async () => {
    const first = await submit(gw1, KEYS.b, upload());
    const second = await submit(gw2, KEYS.b, upload());
    expect([first.status, second.status]).toEqual([201, 201]);
    const over = await submit(gw1, KEYS.b, upload());
    expect(over.status).toBe(429);
    expect((await json(over)).code).toBe('CONCURRENCY_LIMIT');
    expect(over.headers.get('retry-after')).toBe('5');
    const usage = await fetch(`${gw2.url}/api/usage`, { headers: auth(KEYS.b) });
    expect((await json(usage)).usage.active_jobs).toBe(2);
    expect(usage.headers.get('ratelimit')).toBe('"concurrent-jobs";r=0');
    await complete(gw1, (await json(first)).id);
    const next = await submit(gw2, KEYS.b, upload());
    expect(next.status).toBe(201);
    // Free the key for the race below.
    await complete(gw1, (await json(second)).id);
    await complete(gw1, (await json(next)).id);
  });

  it('concurrent jobs: six submits at once over both gateways, two accepted', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(i % 2 ? gw1 : gw2, KEYS.b, upload())));
    const codes = answers.map((r) => r.status).sort();
    expect(codes).toEqual([201, 201, 429, 429, 429, 429]);
    for (const r of answers) if (r.status === 201) await complete(gw1, (await json(r)).id);
  });

  it('audio minutes per day: just under is accepted (the decoder gets what is left), at the limit is a 429', async () => {
    // The Idempotency test used this key too: its job is charged what decoding found (0.5 s).
    const earlier = (await gw1.jobs.list({ owner: ownerOf(KEYS.c), limit: 10 })).items;
    for (const j of earlier) await gw1.jobs.apply(newEvent('job.decoded', j.id, { pcmKey: 'x', sampleRate: 44100, channels: 2, frames: 1, durationSec: 0.5 }));
    const one = await submit(gw1, KEYS.c, upload());
    expect(one.status).toBe(201);
    const a = await json(one);
    expect((await createdFor(a.id)).payload.quota).toEqual({ audioSecLeft: 60 - 0.5 * earlier.length, minutesPerDay: 1 });
    await gw1.jobs.apply(newEvent('job.decoded', a.id, { pcmKey: 'x', sampleRate: 44100, channels: 2, frames: 1, durationSec: 59 - 0.5 * earlier.length }));
    const under = await submit(gw2, KEYS.c, upload());
    expect(under.status).toBe(201);
    const b = await json(under);
    expect((await createdFor(b.id)).payload.quota).toEqual({ audioSecLeft: 1, minutesPerDay: 1 });
    await gw1.jobs.apply(newEvent('job.decoded', b.id, { pcmKey: 'x', sampleRate: 44100, channels: 2, frames: 1, durationSec: 1 }));
    const over = await submit(gw1, KEYS.c, upload());
    expect(over.status).toBe(429);
    expect((await json(over)).code).toBe('QUOTA_EXCEEDED');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(over.headers.get('retry-after'))).toBeLessThanOrEqual(86_400);
    const usage = await json(await fetch(`${gw2.url}/api/usage`, { headers: auth(KEYS.c) }));
    expect(usage.limits).toEqual({ max_concurrent_jobs: null, audio_minutes_per_day: 1, requests_per_sec: null });
    expect(usage.usage).toMatchObject({ audio_minutes_today: 1, audio_minutes_left: 0 });
    // A failed job is not charged: its minute comes back.
    await gw1.jobs.apply(newEvent('job.failed', b.id, { stage: 'separating', reason: 'x', code: 'X', retryable: false }));
    expect((await submit(gw2, KEYS.c, upload())).status).toBe(201);
  });

  it('requests per second: the limit passes, one more is a 429 on either gateway, the next second passes', async () => {
    const get = (g: Gw) => fetch(`${g.url}/api/jobs?limit=1`, { headers: auth(KEYS.d) });
    const ok = [await get(gw1), await get(gw2), await get(gw1)];
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(ok.map((r) => r.headers.get('ratelimit'))).toEqual(['"requests";r=2;t=1', '"requests";r=1;t=1', '"requests";r=0;t=1']);
    expect(ok[0]!.headers.get('ratelimit-policy')).toBe('"requests";q=3;w=1');
    const over = await get(gw2);
    expect([over.status, over.headers.get('retry-after'), (await json(over)).code]).toEqual([429, '1', 'RATE_LIMITED']);
    clock += 1000;
    expect((await get(gw2)).status).toBe(200);
    // Another key has its own count.
    expect((await fetch(`${gw1.url}/api/jobs?limit=1`, { headers: auth(KEYS.a) })).status).toBe(200);
  });
});

describe('import by URL', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
  async function origin(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1') {
    const hits: string[] = [];
    const s = createServer((req, res) => {
      hits.push(req.url ?? '');
      handler(req, res);
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, host, () => r()));
    return { url: `http://${host}:${(s.address() as AddressInfo).port}`, hits };
  }
  const byUrl = (url: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) => submit(gw1, KEYS.a, JSON.stringify({ input_url: url, ...extra }), headers);

  // The transfer itself is the decoder's (the job's importing stage): test/e2e/import.test.ts.
  it('accepts a URL at once without fetching it: the job names what its first stage will fetch', async () => {
    const o = await origin((_q, res) => res.end(wav));
    const r = await byUrl(`${o.url}/songs/Ballad%20(live).wav?sig=abc`, { stems: ['vocals', 'drums'], format: 'flac' });
    expect(r.status).toBe(201);
    const e = await createdFor((await json(r)).id);
    expect(e.payload.input).toBeUndefined();
    expect(e.payload.import).toEqual({ key: `jobs/${e.jobId}/input/source`, filename: 'Ballad (live).wav', url: `${o.url}/songs/Ballad%20(live).wav?…` });
    expect(e.payload.options).toMatchObject({ stems: ['vocals', 'drums'], format: 'flac' });
    expect(o.hits).toEqual([]);
  });

  it('refuses a private or metadata input_url before any request, and both a file and a URL', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://192.168.0.10/song.wav']) {
      const r = await byUrl(url);
      expect([r.status, (await json(r)).code]).toEqual([400, 'URL_REFUSED']);
    }
    const both = await submit(gw1, KEYS.a, upload('a.wav', { input_url: 'http://127.0.0.1:9/x.wav' }));
    expect([both.status, (await json(both)).code]).toEqual([400, 'INPUT_TWICE']);
  });
});

describe('the API documents', () => {
  it('OpenAPI: the new endpoints, the form from the gateway\'s own schema, Idempotency-Key, 429, and the webhook', async () => {
    const doc: any = await (await fetch(`${gw1.url}/api/openapi.json`)).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/usage', '/api/webhooks/secret']));
    const post = doc.paths['/api/jobs'].post;
    expect(Object.keys(post.requestBody.content['multipart/form-data'].schema.properties).sort()).toEqual(['callback_url', 'clip', 'duration', 'file', 'format', 'input_url', 'overlap', 'quality', 'residual', 'sample_rate', 'shifts', 'start', 'stems', 'two_stems']);
    expect(post.requestBody.content['multipart/form-data'].schema.properties.format.enum).toEqual(['wav16', 'wav24', 'f32', 'flac', 'mp3', 'wav']);
    expect([...post.requestBody.content['multipart/form-data'].schema.properties.sample_rate.enum].sort()).toEqual(['44100', 'input']);
    expect(doc.components.schemas.Job.properties.report).toBeDefined();
    expect(doc.paths['/api/jobs/{id}/stems/{stem}'].get.responses['200'].headers['X-Stemflow-Live']).toBeDefined();
    expect(post.requestBody.content['application/json'].schema.required).toEqual(['input_url']);
    expect(post.parameters.map((p: { name: string }) => p.name)).toEqual(['Idempotency-Key']);
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['422', '429']));
    expect(doc.webhooks.jobEnded.post.parameters.map((p: { name: string }) => p.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    expect(doc.components.schemas.Job.properties.webhook).toBeDefined();
  });

  it('AsyncAPI: job.webhook is a documented event', async () => {
    const doc: any = await (await fetch(`${gw1.url}/api/asyncapi.json`)).json();
    expect(doc.components.messages.JobWebhook.payload.properties.payload.properties.outcome.enum).toEqual(['delivered', 'failed', 'retrying']);
  });
});
