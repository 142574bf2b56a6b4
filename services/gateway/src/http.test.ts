/**
 * The gateway on embedded adapters (filesystem store, embedded job store, in-process bus), with
 * the decoder and status services beside it: API keys, byte ranges and zip on the filesystem
 * store, and upload deduplication.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemoryBus, newEvent } from '@stemflow/bus';
import { createParser } from 'eventsource-parser';
import { QUEUES, type EventOf, objectKeys } from '@stemflow/contracts';
import { startDecoder } from '@stemflow/decoder';
import { EmbeddedJobStore } from '@stemflow/jobs';
import { startStatus } from '@stemflow/status';
import { FsBlobStore } from '@stemflow/storage';
import { createLogger, registerJobsByStatus, registerQueueDepth } from '@stemflow/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, EventsHub } from './index.js';

const log = createLogger('test', 'silent');
let url: string;
let close: () => Promise<void>;
let jobs: EmbeddedJobStore;
let blobs: FsBlobStore;
let bus: InMemoryBus;
const wav = execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-ac', '2', '-c:a', 'pcm_s16le', '-f', 'wav', '-']);

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'gw-'));
  blobs = new FsBlobStore(join(root, 'objects'));
  jobs = await EmbeddedJobStore.open(join(root, 'jobs.jsonl'));
  bus = new InMemoryBus({ log });
  await startStatus({ bus, blobs, jobs }, log);
  await startDecoder({ bus, blobs, log }, { maxDurationSec: 60 });
  const app = createApp({ bus, blobs, jobs, log }, { maxUploadBytes: 1 << 20, apiKeys: ['key-a', 'key-b'], ssePollMs: 20, sseKeepAliveMs: 100 });
  const server = await new Promise<import('node:http').Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((r) => server.close(() => r()));
});
afterAll(async () => {
  await close();
  await bus.close();
});

const auth = (k: string) => ({ authorization: `Bearer ${k}` });
async function upload(key: string, fields: Record<string, string> = {}) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  f.append('file', new Blob([new Uint8Array(wav)]), 'tone.wav');
  const res = await fetch(`${url}/api/jobs`, { method: 'POST', body: f, headers: auth(key) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}
/** What the separator would do: stems in the store and job.completed. */
async function complete(id: string) {
  const stems: EventOf<'job.completed'>['payload']['stems'] = [];
  for (const [i, name] of (['drums', 'bass', 'other', 'vocals'] as const).entries()) {
    const data = Buffer.from(`${name}-`.repeat(100 + i));
    await blobs.put(objectKeys.stem(id, name, 'wav'), data);
    stems.push({ name, format: 'wav16', key: objectKeys.stem(id, name, 'wav'), bytes: data.length });
  }
  await bus.publish(newEvent('job.completed', id, { stems, model: 'htdemucs', timings: {} }));
  await until(async () => (await jobs.get(id))?.status === 'completed');
}
async function until(fn: () => Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('API keys', () => {
  it('refuses a missing or unknown key, and a key sees only its own jobs', async () => {
    expect((await fetch(`${url}/api/jobs`)).status).toBe(401);
    const wrong = await fetch(`${url}/api/jobs`, { headers: auth('nope') });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ code: 'UNAUTHENTICATED', detail: 'unknown API key' });
    const id = await upload('key-a');
    expect((await fetch(`${url}/api/jobs/${id}`, { headers: auth('key-a') })).status).toBe(200);
    expect((await fetch(`${url}/api/jobs/${id}`, { headers: auth('key-b') })).status).toBe(404);
    expect((await fetch(`${url}/api/jobs/${id}`, { method: 'DELETE', headers: auth('key-b') })).status).toBe(404);
    const listB = (await (await fetch(`${url}/api/jobs`, { headers: auth('key-b') })).json()) as { items: { id: string }[] };
    expect(listB.items.map((j) => j.id)).not.toContain(id);
    expect((await fetch(`${url}/api/health`)).status).toBe(200); // health needs no key
  });
});

describe('downloads from the filesystem store', () => {
  it('serves byte ranges (206, 416) and a zip of every stem', async () => {
    const id = await upload('key-a');
    await complete(id);
    const whole = await fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: auth('key-a') });
    expect(whole.status).toBe(200);
    const body = Buffer.from(await whole.arrayBuffer());
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const part = await fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: { ...auth('key-a'), range: 'bytes=7-20' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 7-20/${body.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(body.subarray(7, 21));
    const bad = await fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: { ...auth('key-a'), range: `bytes=${body.length + 10}-` } });
    expect(bad.status).toBe(416);
    const zip = await fetch(`${url}/api/jobs/${id}/stems.zip`, { headers: auth('key-a') });
    expect(zip.headers.get('content-type')).toBe('application/zip');
    const file = join(mkdtempSync(join(tmpdir(), 'zip-')), 'stems.zip');
    writeFileSync(file, Buffer.from(await zip.arrayBuffer()));
    const listing = execFileSync('unzip', ['-l', file]).toString();
    for (const s of ['drums', 'bass', 'other', 'vocals']) expect(listing).toContain(`tone - ${s}.wav`);
  });
});

describe('deduplication', () => {
  it('an upload of the same bytes and options as a completed job reuses its stems, separating nothing', async () => {
    const first = await upload('key-b', { format: 'wav16' });
    await complete(first);
    const second = await upload('key-b', { format: 'wav16' });
    await until(async () => (await jobs.get(second))?.status === 'completed');
    const job = (await jobs.get(second))!;
    expect(job.stems.map((s) => s.key)).toEqual(['drums', 'bass', 'other', 'vocals'].map((s) => objectKeys.stem(second, s, 'wav')));
    // Copies: deleting the first job leaves the second one's stems in place.
    await fetch(`${url}/api/jobs/${first}`, { method: 'DELETE', headers: auth('key-b') });
    expect((await blobs.head(job.stems[0]!.key))?.size).toBe(job.stems[0]!.bytes);
    // Other options: a new separation (it stays pending here: no separator runs in this test).
    const third = await upload('key-b', { format: 'flac' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await jobs.get(third))?.status).not.toBe('completed');
  });
});

describe('progress over SSE', () => {
  it('keeps a quiet stream open with comments, which no client sees as an event, and ends at the final state', async () => {
    const id = await upload('key-a', { format: 'mp3' }); // options no earlier job had: no reuse
    await until(async () => (await jobs.get(id))?.stage === 'separating');
    const res = await fetch(`${url}/api/jobs/${id}/events`, { headers: auth('key-a') });
    const raw: string[] = [];
    const events: { event: string; data: { status: string } }[] = [];
    const parser = createParser({ onEvent: (m) => events.push({ event: m.event ?? 'message', data: JSON.parse(m.data) }) });
    const reading = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of res.body!) {
        const text = dec.decode(chunk, { stream: true });
        raw.push(text);
        parser.feed(text);
      }
    })();
    await until(async () => raw.join('').split(': keep-alive').length > 2); // the job waits for a separator
    await complete(id);
    await reading;
    expect(events.map((e) => e.event).at(-1)).toBe('completed');
    expect(events.every((e) => e.data.status)).toBe(true);
  });
});

describe('SSE pushed from the bus (the read model read once per stream)', () => {
  it('10 streams on one job each get every change as it is published, with one read-model read each; a reconnect with Last-Event-ID gets nothing twice', async () => {
    const id = await upload('key-a', { format: 'wav24' });
    await until(async () => (await jobs.get(id))?.stage === 'separating');
    let reads = 0;
    const counted = Object.create(jobs, { get: { value: (jobId: string) => (reads++, jobs.get(jobId)) } }) as EmbeddedJobStore;
    const hub = await EventsHub.start(bus, log);
    // No polling: ssePollMs is longer than the test, so whatever arrives was pushed.
    const app = createApp({ bus, blobs, jobs: counted, log }, { maxUploadBytes: 1 << 20, apiKeys: ['key-a'], hub, ssePollMs: 600_000, sseQuietPollMs: 600_000 });
    const server = await new Promise<import('node:http').Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      type Ev = { event: string; id: string; progress: number };
      const follow = async (lastEventId?: string) => {
        const res = await fetch(`${api}/api/jobs/${id}/events`, { headers: { ...auth('key-a'), ...(lastEventId ? { 'last-event-id': lastEventId } : {}) } });
        const events: Ev[] = [];
        const parser = createParser({ onEvent: (m) => events.push({ event: m.event ?? 'message', id: m.id ?? '', progress: JSON.parse(m.data).progress }) });
        const done = (async () => {
          const dec = new TextDecoder();
          for await (const chunk of res.body!) parser.feed(dec.decode(chunk, { stream: true }));
        })();
        return { events, done };
      };
      const streams = await Promise.all(Array.from({ length: 10 }, () => follow()));
      await until(async () => hub.streams === 10 && streams.every((s) => s.events.length === 1));
      const readsAtOpen = reads;
      expect(readsAtOpen).toBe(10);
      for (let k = 0; k < 5; k++) {
        await bus.publish(newEvent('job.progress', id, { stage: 'separating', progress: 0.1 + 0.1 * k, chunk: { index: k, count: 5 } }));
        await until(async () => streams.every((s) => s.events.at(-1)!.progress === 0.1 + 0.1 * k));
      }
      const resumeFrom = streams[0]!.events.at(-1)!.id;
      const late = await follow(resumeFrom);
      await until(async () => hub.streams === 11);
      await complete(id);
      await Promise.all([...streams, late].map((s) => s.done));
      for (const s of streams) {
        expect(s.events.map((e) => e.progress).slice(1, 6)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5].map((p) => expect.closeTo(p, 9)));
        expect(s.events.at(-1)!.event).toBe('completed');
        expect(new Set(s.events.map((e) => e.id)).size).toBe(s.events.length); // nothing twice
      }
      // The late stream resumed after what it had: only the completion is new to it.
      expect(late.events.map((e) => e.event)).toEqual(['completed']);
      expect(reads).toBe(11); // one per stream, whatever the number of events
    } finally {
      await hub.close();
      await new Promise((r) => server.close(() => r(undefined)));
    }
  });
});

describe('downloads right after the stream says completed', () => {
  it('serve the stems the gateway heard of, though the read model has not caught up (no 404 in between)', async () => {
    // A read model no status service writes: it stays at the pending document the upload made.
    const lagging = await EmbeddedJobStore.open(join(mkdtempSync(join(tmpdir(), 'lag-')), 'jobs.jsonl'));
    const hub = await EventsHub.start(bus, log);
    const app = createApp({ bus, blobs, jobs: lagging, log }, { maxUploadBytes: 1 << 20, apiKeys: ['key-a'], hub });
    const server = await new Promise<import('node:http').Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const f = new FormData();
      f.append('format', 'flac');
      f.append('file', new Blob([new Uint8Array(wav)]), 'lag.wav');
      const { id } = (await (await fetch(`${api}/api/jobs`, { method: 'POST', body: f, headers: auth('key-a') })).json()) as { id: string };
      await complete(id); // published on the bus; the main read model has it, `lagging` never will
      await until(async () => ((await (await fetch(`${api}/api/jobs/${id}`, { headers: auth('key-a') })).json()) as { status: string }).status === 'completed');
      expect((await lagging.get(id))?.status).toBe('pending');
      const stem = await fetch(`${api}/api/jobs/${id}/stems/vocals`, { headers: auth('key-a') });
      expect(stem.status).toBe(200);
      expect(Buffer.from(await stem.arrayBuffer()).toString()).toBe('vocals-'.repeat(103));
      expect((await fetch(`${api}/api/jobs/${id}/stems.zip`, { headers: auth('key-a') })).status).toBe(200);
    } finally {
      await hub.close();
      await new Promise((r) => server.close(() => r(undefined)));
      await lagging.close();
    }
  });
});

describe('metrics and the events document', () => {
  it('GET /metrics is Prometheus text with requests by route, stage durations, settled messages, jobs by status and queue depth', async () => {
    registerJobsByStatus(() => jobs.countByStatus());
    registerQueueDepth((q) => bus.depth(q), [QUEUES.decoder.name, QUEUES.separator.name]);
    const id = await upload('key-a');
    await until(async () => (await jobs.get(id))?.stage === 'decoding' || (await jobs.get(id))?.status !== 'pending');
    await fetch(`${url}/api/jobs/${id}`, { headers: auth('key-a') });
    await until(async () => (await (await fetch(`${url}/metrics`)).text()).includes('stage="decode",outcome="ok"'));
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/stemflow_http_request_duration_seconds_count\{method="POST",route="\/api\/jobs",status="201"\} [1-9]/);
    expect(text).toMatch(/stemflow_http_request_duration_seconds_count\{method="GET",route="\/api\/jobs\/:id",status="200"\} [1-9]/);
    expect(text).toMatch(/stemflow_stage_duration_seconds_count\{stage="decode",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/stemflow_messages_total\{queue="decoder\.job-created",event="job\.created",outcome="ack"\} [1-9]/);
    expect(text).toMatch(/stemflow_messages_total\{queue="status\.job-events",event="job\.decoded",outcome="ack"\} [1-9]/);
    expect(text).toMatch(/stemflow_uploaded_bytes_total [1-9]/);
    expect(text).toMatch(/stemflow_jobs\{status="completed"\} [1-9]/);
    expect(text).toMatch(/stemflow_queue_depth\{queue="separator\.job-decoded"\} [1-9]/); // no separator runs here
    expect(text).toContain('stemflow_process_resident_memory_bytes');
    expect(text).not.toMatch(/route="\/api\/jobs\/[0-9a-f]{8}-/); // ids never become labels
  });

  it('GET / serves the web page', async () => {
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('<title>stemflow');
  });

  it('GET /api/asyncapi.json is the AsyncAPI 3.0 document of every event', async () => {
    const doc = (await (await fetch(`${url}/api/asyncapi.json`)).json()) as { asyncapi: string; channels: Record<string, { address: string }> };
    expect(doc.asyncapi).toBe('3.0.0');
    expect(doc.channels.jobCompleted?.address).toBe('job.completed');
  });
});

describe('a stem while its job runs (clip=clamp): what is stored, then each new piece, until complete', () => {
  /** What the separator does while it separates: a manifest, then pieces named by their offset. */
  const header = (frames: number) => {
    const h = Buffer.alloc(44);
    h.write('RIFF', 0); h.writeUInt32LE(36 + 4 * frames, 4); h.write('WAVEfmt ', 8); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(2, 22);
    h.writeUInt32LE(44100, 24); h.writeUInt32LE(44100 * 4, 28); h.writeUInt16LE(4, 32); h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(4 * frames, 40);
    return h;
  };
  const file = Buffer.concat([header(50_000), Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff))]);
  async function running(options: Record<string, string> = { clip: 'clamp' }) {
    const id = await upload('key-a', { ...options, stems: `vocals,other,drums,bass`, shifts: String(1), overlap: String(0.25 + Math.random() / 10) });
    await until(async () => !!(await jobs.get(id))?.output);
    return id;
  }
  const piece = (id: string, from: number, to: number) => blobs.put(objectKeys.livePart(id, 'vocals', from), file.subarray(from, to));
  const manifest = (id: string) => blobs.put(objectKeys.liveManifest(id, 'vocals'), Buffer.from(JSON.stringify({ format: 'wav16', contentType: 'audio/wav', sampleRate: 44100, frames: 50_000, bytes: file.length })));
  const wake = (id: string) => bus.publish(newEvent('job.progress', id, { stage: 'separating', progress: 0.5, readySec: 1 }));
  /** Reads a response's body, calling `onBytes` with the count so far. */
  async function read(res: Response, onBytes?: (n: number) => void) {
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res.body as AsyncIterable<Uint8Array>) {
        chunks.push(Buffer.from(c));
        n += c.length;
        onBytes?.(n);
      }
      return { bytes: Buffer.concat(chunks), cut: false };
    } catch {
      return { bytes: Buffer.concat(chunks), cut: true };
    }
  }

  it('streams the pieces as they come, ends at the length the header states, and serves a range before its bytes exist', async () => {
    const id = await running();
    expect(((await (await fetch(`${url}/api/jobs/${id}`, { headers: auth('key-a') })).json()) as { live_stems: { name: string }[] }).live_stems.map((s) => s.name)).toEqual(['vocals', 'other', 'drums', 'bass']);
    await manifest(id);
    await piece(id, 0, 1000);
    const res = await fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: auth('key-a') });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-stemflow-live')).toBe('true');
    expect(res.headers.get('content-length')).toBe(String(file.length));
    let seen = 0;
    const whole = read(res, (n) => (seen = n));
    const ranged = fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: { ...auth('key-a'), range: 'bytes=150000-' } });
    await until(async () => seen === 1000);
    await piece(id, 1000, 120_000);
    await wake(id);
    await until(async () => seen === 120_000);
    await piece(id, 120_000, file.length);
    await wake(id);
    expect((await whole).bytes.equals(file)).toBe(true);
    const r = await ranged;
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 150000-${file.length - 1}/${file.length}`);
    expect((await read(r)).bytes.equals(file.subarray(150_000))).toBe(true);
    const head = await fetch(`${url}/api/jobs/${id}/stems/vocals`, { method: 'HEAD', headers: auth('key-a') });
    expect([head.status, head.headers.get('content-length')]).toEqual([200, String(file.length)]);
    // A range past the final length is refused as for a finished file, not answered with the whole.
    const past = await fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: { ...auth('key-a'), range: `bytes=${file.length + 10}-` } });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, `bytes */${file.length}`]);
    expect(((await past.json()) as { code: string }).code).toBe('RANGE_NOT_SATISFIABLE');
  });

  it('a job that completes mid-stream: the rest comes from the finished file; a job that fails cuts the response', async () => {
    const id = await running();
    await manifest(id);
    await piece(id, 0, 50_000);
    let seen = 0;
    const res = read(await fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: auth('key-a') }), (n) => (seen = n));
    await until(async () => seen === 50_000);
    // The separator's end: the stem stored whole, job.completed, the pieces removed.
    await blobs.put(objectKeys.stem(id, 'vocals', 'wav'), file);
    await bus.publish(newEvent('job.completed', id, { stems: [{ name: 'vocals', format: 'wav16', key: objectKeys.stem(id, 'vocals', 'wav'), bytes: file.length }], model: 'htdemucs', timings: {} }));
    await blobs.deletePrefix(`jobs/${id}/work/`);
    expect((await res).bytes.equals(file)).toBe(true);

    const failing = await running();
    await manifest(failing);
    await piece(failing, 0, 1000);
    let got = 0;
    const cut = read(await fetch(`${url}/api/jobs/${failing}/stems/vocals`, { headers: auth('key-a') }), (n) => (got = n));
    await until(async () => got === 1000);
    await bus.publish(newEvent('job.failed', failing, { stage: 'separating', reason: 'the model failed', code: 'X', retryable: false }));
    const r = await cut;
    expect(r.cut).toBe(true); // not a complete file: a client cannot take it for one
    expect(r.bytes.length).toBe(1000);
  });

  it('a running job with clip=rescale has no stem until it completes: 409 saying why', async () => {
    const id = await running({ clip: 'rescale' });
    const res = await fetch(`${url}/api/jobs/${id}/stems/vocals`, { headers: auth('key-a') });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string; detail: string })).toMatchObject({ code: 'JOB_NOT_COMPLETED', detail: 'the job is processing; it has no stems yet' });
  });
});
