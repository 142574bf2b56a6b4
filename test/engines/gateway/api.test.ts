/**
 * The gateway's HTTP API against the real S3 server, RabbitMQ and FerretDB: every endpoint, every
 * error, and after each failure nothing left in the store or the database.
 */
import { createHash } from 'node:crypto';
import { newEvent, RabbitBus } from '@stemflow/bus';
import type { EventOf, QueueSpec } from '@stemflow/contracts';
import { MongoJobStore } from '@stemflow/jobs';
import { S3BlobStore } from '@stemflow/storage';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toneWav } from '../../support/audio.js';
import { engineEnv, eventually, unique } from '../../support/env.js';
import { form, serveGateway } from '../../support/gateway.js';
import { deleteQueues, withChannel } from '../../support/rabbit.js';
import { mongoUrl } from '../../support/status.js';

const bucket = unique('gw').toLowerCase();
let blobs: S3BlobStore;
let jobs: MongoJobStore;
let bus: RabbitBus;
let gw: Awaited<ReturnType<typeof serveGateway>>;
let wav: Buffer;
const created: EventOf<'job.created'>[] = [];
const canceled: string[] = [];
const watch: QueueSpec = { name: `test.gw.${uuidv7()}`, bindings: ['job.created', 'job.canceled'], prefetch: 50, retry: { maxAttempts: 1, delaysMs: [100] }, stage: 't', failJobOnGiveUp: false, description: 'test' };

const s3 = () => new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket });

beforeAll(async () => {
  blobs = s3();
  jobs = await MongoJobStore.connect(mongoUrl());
  bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL') });
  await bus.declare(watch);
  await bus.subscribe(watch, {
    'job.created': async (e) => void created.push(e),
    'job.canceled': async (e) => void canceled.push(e.jobId),
  });
  gw = await serveGateway({ bus, blobs, jobs }, { maxUploadBytes: 2 * 1024 * 1024 });
  wav = await toneWav(1);
});
afterAll(async () => {
  await gw.close();
  await bus.close();
  await jobs.close();
  await blobs.deletePrefix('');
  await withChannel((ch) => deleteQueues(ch, watch));
});

const post = (body: FormData | string, headers: Record<string, string> = {}) => fetch(`${gw.url}/api/jobs`, { method: 'POST', body, headers });
const nothingLeft = async () => {
  expect(await blobs.list('jobs/')).toEqual([]);
  expect((await jobs.list({ limit: 10 })).items).toEqual([]);
};

describe('POST /api/jobs: rejected uploads leave nothing behind', () => {
  it.each([
    ['an empty file', () => form({ name: 'a.wav', data: Buffer.alloc(0) }), 400, 'EMPTY_FILE'],
    ['a text file named .mp3', () => form({ name: 'song.mp3', data: Buffer.from('hello, this is not music at all\n'.repeat(200)) }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a PNG image', () => form({ name: 'cover.wav', data: Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(5000)]) }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['no file at all', () => form(undefined, { format: 'flac' }), 400, 'MISSING_FILE'],
    ['the wrong field name', () => form({ name: 'a.wav', data: wav, field: 'audio' }), 400, 'UNEXPECTED_FILE'],
    ['shifts=-1', () => form({ name: 'a.wav', data: wav }, { shifts: '-1' }), 400, 'INVALID_OPTIONS'],
    ['format=exe', () => form({ name: 'a.wav', data: wav }, { format: 'exe' }), 400, 'INVALID_OPTIONS'],
    ['an unknown stem', () => form({ name: 'a.wav', data: wav }, { stems: 'vocals,kazoo' }), 400, 'INVALID_OPTIONS'],
    ['an unknown option', () => form({ name: 'a.wav', data: wav }, { quality: 'max' }), 400, 'INVALID_OPTIONS'],
  ])('%s → %i %s', async (_what, body, status, code) => {
    const res = await post(body());
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ code, detail: expect.any(String) });
    await nothingLeft();
  });

  it('two files → 400', async () => {
    const f = form({ name: 'a.wav', data: wav });
    f.append('file', new Blob([new Uint8Array(wav)]), 'b.wav');
    const res = await post(f);
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).code).toBe('UNEXPECTED_FILE');
    await nothingLeft();
  });

  it('over MAX_UPLOAD_BYTES → 413, and the partial object is gone', async () => {
    const big = Buffer.concat([wav, Buffer.alloc(3 * 1024 * 1024)]);
    const res = await post(form({ name: 'big.wav', data: big }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as any)).toMatchObject({ code: 'UPLOAD_TOO_LARGE', detail: 'the file is larger than the 2097152 bytes this server accepts' });
    await nothingLeft();
  });

  it('not multipart → 400 with what to send', async () => {
    const res = await post(JSON.stringify({ file: 'x' }), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).detail).toMatch(/multipart\/form-data/);
  });
});

describe('a job through the API', () => {
  let id: string;

  it('accepts an upload: 201 after job.created is confirmed, the object stored and hashed', async () => {
    const res = await post(form({ name: '../../etc/Beyoncé – Halo.wav', data: wav }, { stems: 'vocals,drums', format: 'flac' }));
    expect(res.status).toBe(201);
    const body: any = await res.json();
    expect(body).toEqual({ id: expect.any(String), status: 'pending', created_at: expect.any(String) });
    id = body.id;
    expect(res.headers.get('location')).toBe(`/api/jobs/${id}`);

    const key = `jobs/${id}/input/source`; // a neutral name: the client's stays in the record
    expect((await blobs.head(key))?.size).toBe(wav.length);
    const e = await eventually(() => created.find((c) => c.jobId === id), { what: 'job.created' });
    expect(e.payload.input).toEqual({ key, filename: 'Beyoncé – Halo.wav', size: wav.length, content_type: 'audio/wav', sha256: createHash('sha256').update(wav).digest('hex') });
    expect(e.payload.options).toMatchObject({ stems: ['vocals', 'drums'], format: 'flac', shifts: 1 });
  });

  it('reads the job at once (seed fields plus progress)', async () => {
    const res = await fetch(`${gw.url}/api/jobs/${id}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, status: 'pending', error_message: null, stage: null, progress: 0, eta_sec: null, stems: [], filename: 'Beyoncé – Halo.wav' });
  });

  it('answers 400 for a bad id and 404 for an unknown one', async () => {
    expect(((await (await fetch(`${gw.url}/api/jobs/not-a-uuid`)).json()) as any).code).toBe('INVALID_JOB_ID');
    const res = await fetch(`${gw.url}/api/jobs/${uuidv7()}`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).code).toBe('JOB_NOT_FOUND');
  });

  it('streams progress over SSE until the job ends', async () => {
    const res = await fetch(`${gw.url}/api/jobs/${id}/events`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    // The status service's writes, done here directly.
    setTimeout(async () => {
      await jobs.apply(newEvent('job.progress', id, { stage: 'separating', progress: 0.5, etaSec: 3 }));
      setTimeout(() => void jobs.apply(newEvent('job.completed', id, { stems: [{ name: 'vocals', format: 'flac', key: `jobs/${id}/stems/vocals.flac`, bytes: 4 }], model: 'htdemucs', timings: {} })), 200);
    }, 200);
    const text = await res.text(); // the server closes the stream at the end
    // (This gateway has no bus subscription: the stream falls back to polling the read model.)
    const events = text.trim().split('\n\n').filter((b) => /^data: /m.test(b)).map((b) => ({ event: /^event: (.*)$/m.exec(b)?.[1], data: JSON.parse(/^data: (.*)$/m.exec(b)![1]!) }));
    expect(events.map((e) => e.event)).toEqual(['progress', 'progress', 'completed']);
    expect(events[1]!.data).toMatchObject({ status: 'processing', stage: 'separating', progress: 0.5, eta_sec: 3 });
    expect(events[2]!.data).toMatchObject({ status: 'completed', progress: 1, stems: [{ name: 'vocals', url: `/api/jobs/${id}/stems/vocals` }] });
  });

  it('redirects a stem download to a presigned S3 URL that serves it', async () => {
    await blobs.put(`jobs/${id}/stems/vocals.flac`, Buffer.from('fLaC'));
    const res = await fetch(`${gw.url}/api/jobs/${id}/stems/vocals`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const got = await fetch(res.headers.get('location')!);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('fLaC');
    expect(got.headers.get('content-disposition')).toContain('Halo - vocals.flac');
    expect((await fetch(`${gw.url}/api/jobs/${id}/stems/bass`)).status).toBe(404);
  });

  it('lists jobs newest first with paging', async () => {
    const second = ((await (await post(form({ name: "b.wav", data: wav }))).json()) as any).id;
    const p1: any = await (await fetch(`${gw.url}/api/jobs?limit=1`)).json();
    expect(p1.items.map((j: { id: string }) => j.id)).toEqual([second]);
    const p2: any = await (await fetch(`${gw.url}/api/jobs?limit=1&cursor=${p1.next_cursor}`)).json();
    expect(p2.items.map((j: { id: string }) => j.id)).toEqual([id]);
    expect(p2.next_cursor).toBeNull();
    expect((await fetch(`${gw.url}/api/jobs?status=exploded`)).status).toBe(400);
    // Cancel: a job.canceled event; a finished job cannot be canceled.
    expect((await fetch(`${gw.url}/api/jobs/${second}/cancel`, { method: 'POST' })).status).toBe(202);
    await eventually(() => canceled.includes(second), { what: 'job.canceled' });
    expect((await fetch(`${gw.url}/api/jobs/${id}/cancel`, { method: 'POST' })).status).toBe(409);
    expect((await fetch(`${gw.url}/api/jobs/${second}`, { method: 'DELETE' })).status).toBe(204);
  });

  it('DELETE removes the objects and the record', async () => {
    expect((await fetch(`${gw.url}/api/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${gw.url}/api/jobs/${id}`)).status).toBe(404);
    await nothingLeft();
  });
});

describe('health, docs and failures of dependencies', () => {
  it('reports each dependency', async () => {
    const res = await fetch(`${gw.url}/api/health`);
    expect(res.status).toBe(200);
    const h: any = await res.json();
    expect(h.status).toBe('ok');
    expect(h.dependencies.map((d: { name: string; ok: boolean }) => [d.name, d.ok])).toEqual([['broker', true], ['store', true], ['database', true], ['events', true]]);
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const doc: any = await (await fetch(`${gw.url}/api/openapi.json`)).json();
    expect(doc.openapi).toBe('3.2.0');
    expect(Object.keys(doc.paths)).toContain('/api/jobs/{id}/events');
    expect(doc.components.schemas.Job.properties.status.enum).toEqual(['pending', 'processing', 'completed', 'failed', 'canceled']);
    expect(await (await fetch(`${gw.url}/docs`)).text()).toContain('SwaggerUIBundle');
    expect((await fetch(`${gw.url}/docs/assets/swagger-ui-bundle.js`)).status).toBe(200);
  });

  it('store down: 503 with a clear message, no job left', async () => {
    const dead = new S3BlobStore({ endpoint: 'http://127.0.0.1:1', accessKey: 'a', secretKey: 'b', bucket: 'dead-bucket' });
    const g = await serveGateway({ bus, blobs: dead, jobs });
    try {
      const r = await fetch(`${g.url}/api/jobs`, { method: 'POST', body: form({ name: 'a.wav', data: wav }) });
      expect(r.status).toBe(503);
      expect(((await r.json()) as any)).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', detail: 'object store is unavailable, try again shortly' });
      const h = await fetch(`${g.url}/api/health`);
      expect(h.status).toBe(503);
      await nothingLeft();
    } finally {
      await g.close();
    }
  });

  it('broker down: 503, and neither the job nor its upload is left', async () => {
    const closed = await RabbitBus.connect({ url: engineEnv('AMQP_URL'), queues: [], publishTimeoutMs: 500 });
    await closed.close();
    const g = await serveGateway({ bus: closed, blobs, jobs });
    try {
      const r = await fetch(`${g.url}/api/jobs`, { method: 'POST', body: form({ name: 'a.wav', data: wav }) });
      expect(r.status).toBe(503);
      expect(((await r.json()) as any).code).toBe('DEPENDENCY_UNAVAILABLE');
      await nothingLeft();
    } finally {
      await g.close();
    }
  });
});
