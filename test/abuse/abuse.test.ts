/**
 * Bad inputs, each with its expected answer, against the deployed services (gateway, decoder and
 * status as their own processes on RabbitMQ, the S3 server and FerretDB). Every case answers a
 * clear 4xx with a JSON body, or ends its job `failed` with a sentence a person understands; after
 * every case nothing is half-written (no object without a job), and the services keep serving.
 */
import { connect as tcp } from 'node:net';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@stemflow/bus';
import { EXCHANGE, HEADERS, QUEUES } from '@stemflow/contracts';
import { ffmpegFile, toneWav } from '../support/audio.js';
import { orphanObjects, startCluster, type Cluster } from '../support/cluster.js';
import { eventually } from '../support/env.js';
import { withChannel } from '../support/rabbit.js';

const A = { authorization: 'Bearer key-a' };
const B = { authorization: 'Bearer key-b' };
let c: Cluster;
let wav: Buffer;
/** A job of key A that ended (failed: no separator runs here). */
let endedJob: string;

beforeAll(async () => {
  c = await startCluster({
    services: ['status', 'decoder', 'gateway'],
    env: { API_KEYS: 'key-a,key-b', MAX_UPLOAD_BYTES: String(2 * 1024 * 1024), HTTP_IDLE_TIMEOUT_SEC: '2', UPLOAD_MIN_BYTES_PER_SEC: '20000', MAX_DURATION_SEC: '600' },
  });
  wav = await toneWav(1);
}, 120_000);
afterAll(async () => {
  await c?.stop();
});
// After every case: nothing in the store that no job owns, and the gateway still answers.
afterEach(async () => {
  expect(await orphanObjects(c)).toEqual([]);
  expect((await fetch(`${c.api}/api/health`)).status).toBe(200);
});

type Part = { field: string; name?: string; data: Buffer | string; type?: string };
function form(parts: Part[]) {
  const f = new FormData();
  for (const p of parts) {
    if (p.name === undefined) f.append(p.field, String(p.data));
    else f.append(p.field, new Blob([typeof p.data === 'string' ? p.data : new Uint8Array(p.data)], { type: p.type ?? 'application/octet-stream' }), p.name);
  }
  return f;
}
const post = (body: FormData | string, headers: Record<string, string> = A, extra: Record<string, string> = {}) => fetch(`${c.api}/api/jobs`, { method: 'POST', body, headers: { ...headers, ...extra } });
const audio = (name = 'song.wav', data: Buffer = wav): Part => ({ field: 'file', name, data, type: 'audio/wav' });
async function expectError(res: Response, status: number, code: string | RegExp, message?: RegExp) {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect({ status: res.status, code: body.error.code }).toEqual({ status, code: typeof code === 'string' ? code : expect.stringMatching(code) });
  expect(body.error.message.length).toBeGreaterThan(5);
  if (message) expect(body.error.message).toMatch(message);
}
async function accepted(res: Response): Promise<string> {
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}
async function failsWith(id: string, reason: RegExp) {
  const job = await eventually(async () => {
    const j = await c.jobs.get(id);
    return j && j.status !== 'pending' && j.status !== 'processing' ? j : undefined;
  }, { timeoutMs: 60_000, what: `job ${id} to end` });
  expect(job.status).toBe('failed');
  expect(job.error_message).toMatch(reason);
  return job;
}

describe('uploads refused with a 4xx and a JSON reason, nothing kept', () => {
  it.each([
    ['no API key', () => post(form([audio()]), {}), 401, 'UNAUTHENTICATED'],
    ['an unknown API key', () => post(form([audio()]), { authorization: 'Bearer key-z' }), 401, 'UNAUTHENTICATED'],
    ['Basic instead of Bearer', () => post(form([audio()]), { authorization: 'Basic a2V5LWE6' }), 401, 'UNAUTHENTICATED'],
    ['a JSON body', () => post('{"file":"song.wav"}', A, { 'content-type': 'application/json' }), 400, 'NOT_MULTIPART'],
    ['no file, options only', () => post(form([{ field: 'format', data: 'flac' }])), 400, 'MISSING_FILE'],
    ['the file in the wrong field', () => post(form([{ ...audio(), field: 'audio' }])), 400, 'UNEXPECTED_FILE'],
    ['two files', () => post(form([audio('a.wav'), audio('b.wav')])), 400, 'UNEXPECTED_FILE'],
    ['zero bytes', () => post(form([audio('empty.wav', Buffer.alloc(0))])), 400, 'EMPTY_FILE'],
    ['text named .mp3, sent as audio/mpeg', () => post(form([{ field: 'file', name: 'song.mp3', data: 'la la la, not a song\n'.repeat(300), type: 'audio/mpeg' }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a PNG image', () => post(form([{ field: 'file', name: 'cover.wav', data: Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex') }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['an ELF executable', () => post(form([{ field: 'file', name: 'song.exe', data: Buffer.concat([Buffer.from('7f454c460201010000000000000000000200', 'hex'), Buffer.alloc(5000)]) }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a zip archive', () => post(form([{ field: 'file', name: 'stems.zip', data: Buffer.concat([Buffer.from('504b0304140000000800', 'hex'), Buffer.alloc(5000, 1)]) }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['over MAX_UPLOAD_BYTES (2 MiB)', () => post(form([audio('big.wav', Buffer.concat([wav, Buffer.alloc(3 << 20)]))])), 413, 'UPLOAD_TOO_LARGE'],
    ['shifts=-1', () => post(form([{ field: 'shifts', data: '-1' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['format=exe', () => post(form([{ field: 'format', data: 'exe' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['an unknown stem', () => post(form([{ field: 'stems', data: 'drums,kazoo' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['overlap=2', () => post(form([{ field: 'overlap', data: '2' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['two_stems=drums', () => post(form([{ field: 'two_stems', data: 'drums' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['an unknown option field', () => post(form([{ field: 'model', data: '../../evil.onnx' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['25 form fields', () => post(form([...Array.from({ length: 25 }, (_, i) => ({ field: `f${i}`, data: 'x' })), audio()])), 400, /TOO_MANY_(FIELDS|PARTS)/],
    ['a 2 KB option value', () => post(form([{ field: 'format', data: 'w'.repeat(2048) }, audio()])), 400, 'FIELD_TOO_LONG'],
    ['a NUL byte in the file name', () => post(form([audio('song\u0000.wav')])), 400, 'BAD_UPLOAD'],
    ['a malformed multipart body', () => post('--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF', A, { 'content-type': 'multipart/form-data; boundary=xyz' }), 400, /BAD_UPLOAD|UPLOAD_ABORTED/],
  ] as const)('%s', async (_what, send, status, code) => {
    const before = (await c.jobs.list({ limit: 100 })).items.length;
    await expectError(await send(), status, code);
    expect((await c.jobs.list({ limit: 100 })).items.length).toBe(before);
  });
});

describe('uploads that are accepted, with their names made safe', () => {
  it('path traversal in the file name stays inside the job', async () => {
    const id = await accepted(await post(form([audio('../../../etc/passwd.wav')])));
    const job = (await c.jobs.get(id))!;
    expect(job.input.key).toBe(`jobs/${id}/input/source`);
    expect(job.input.filename).toBe('passwd.wav');
  });

  it('unicode names are kept, control characters removed', async () => {
    const id = await accepted(await post(form([audio('Björk – Jóga 🎵\t.wav')])));
    const job = (await c.jobs.get(id))!;
    expect(job.input.filename).toBe('Björk – Jóga 🎵.wav');
    expect((await c.blobs.head(job.input.key))?.size).toBe(wav.length);
  });
});

describe('inputs that fail their job with a reason', () => {
  it('truncated audio', async () => {
    const mp3 = await ffmpegFile(['-f', 'lavfi', '-i', 'sine=frequency=330:duration=30', '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '64k'], 'mp3');
    const id = await accepted(await post(form([{ field: 'file', name: 'cut.mp3', data: mp3.subarray(0, mp3.length >> 2), type: 'audio/mpeg' }])));
    await failsWith(id, /cut off or damaged/);
  });

  it('a decompression bomb: ten hours of silence in a small file, refused before decoding', async () => {
    const flac = await ffmpegFile(['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '36000', '-c:a', 'flac', '-frame_size', '32768'], 'flac');
    expect(flac.length).toBeLessThan(2 << 20);
    const id = await accepted(await post(form([{ field: 'file', name: 'bomb.flac', data: flac, type: 'audio/flac' }])));
    await failsWith(id, /10:00:00 long; this server accepts at most 10:00/);
    expect(await c.blobs.list(`jobs/${id}/pcm/`)).toEqual([]); // nothing was decoded
    endedJob = id;
  });
});

describe('slow and broken clients', () => {
  /** Opens a raw upload: headers and the first part of a multipart body, then lets the test decide. */
  function rawUpload(bodyBytes: number) {
    const boundary = 'stemflowtest';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
    const url = new URL(c.api);
    const sock = tcp(Number(url.port), url.hostname);
    let response = '';
    sock.on('data', (d) => (response += d.toString()));
    sock.on('error', () => {});
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(`POST /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-a\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + bodyBytes + 100}\r\n\r\n`);
    sock.write(head);
    return { sock, closed, response: () => response };
  }
  const jobCount = async () => (await c.jobs.list({ limit: 100 })).items.length;

  it('slow-loris: an upload that stalls gets 408 after the idle timeout and leaves nothing', async () => {
    const before = await jobCount();
    const u = rawUpload(1 << 20);
    u.sock.write(wav.subarray(0, 64 * 1024)); // then nothing more
    await u.closed;
    expect(u.response()).toMatch(/^HTTP\/1\.1 408/);
    expect(u.response()).toContain('"code":"REQUEST_TIMEOUT"');
    await eventually(async () => (await orphanObjects(c)).length === 0, { timeoutMs: 10_000, what: 'the partial upload removed' });
    expect(await jobCount()).toBe(before);
  });

  it('a drip-feed below UPLOAD_MIN_BYTES_PER_SEC gets 408 UPLOAD_TOO_SLOW', async () => {
    const before = await jobCount();
    const u = rawUpload(1 << 20);
    u.sock.write(wav.subarray(0, 8192));
    const drip = setInterval(() => u.sock.write(Buffer.alloc(500, 1)), 250); // 2 KB/s, never idle
    await Promise.race([u.closed, new Promise((r) => setTimeout(r, 15_000))]);
    clearInterval(drip);
    u.sock.destroy();
    expect(u.response()).toMatch(/^HTTP\/1\.1 408/);
    expect(u.response()).toContain('"code":"UPLOAD_TOO_SLOW"');
    await eventually(async () => (await orphanObjects(c)).length === 0, { timeoutMs: 10_000, what: 'the partial upload removed' });
    expect(await jobCount()).toBe(before);
  });

  it('a client that disconnects mid-upload leaves no object and no job', async () => {
    const before = await jobCount();
    const u = rawUpload(1 << 20);
    u.sock.write(Buffer.concat([wav, Buffer.alloc(200_000)]));
    await new Promise((r) => setTimeout(r, 300));
    u.sock.destroy();
    await eventually(async () => (await orphanObjects(c)).length === 0, { timeoutMs: 10_000, what: 'the partial upload removed' });
    expect(await jobCount()).toBe(before);
  });
});

describe('reads, ids and other keys', () => {
  let mine: string;
  beforeAll(async () => {
    mine = await accepted(await post(form([audio('mine.wav')])));
  });

  it.each([
    ['a job id that is not a UUID', () => fetch(`${c.api}/api/jobs/not-an-id`, { headers: A }), 400, 'INVALID_JOB_ID'],
    ['a NoSQL operator as the id', () => fetch(`${c.api}/api/jobs/%7B%22%24ne%22%3A1%7D`, { headers: A }), 400, 'INVALID_JOB_ID'],
    ['an unknown job', () => fetch(`${c.api}/api/jobs/${uuidv7()}`, { headers: A }), 404, 'JOB_NOT_FOUND'],
    ['SSE on an unknown job', () => fetch(`${c.api}/api/jobs/${uuidv7()}/events`, { headers: A }), 404, 'JOB_NOT_FOUND'],
    ["another key's job", () => fetch(`${c.api}/api/jobs/${mine}`, { headers: B }), 404, 'JOB_NOT_FOUND'],
    ["SSE on another key's job", () => fetch(`${c.api}/api/jobs/${mine}/events`, { headers: B }), 404, 'JOB_NOT_FOUND'],
    ["cancelling another key's job", () => fetch(`${c.api}/api/jobs/${mine}/cancel`, { method: 'POST', headers: B }), 404, 'JOB_NOT_FOUND'],
    ["deleting another key's job", () => fetch(`${c.api}/api/jobs/${mine}`, { method: 'DELETE', headers: B }), 404, 'JOB_NOT_FOUND'],
    ['a stem before the job completed', () => fetch(`${c.api}/api/jobs/${mine}/stems/vocals`, { headers: A }), 404, 'STEM_NOT_FOUND'],
    ['a traversal as the stem name', () => fetch(`${c.api}/api/jobs/${mine}/stems/..%2F..%2Finput`, { headers: A }), 404, 'STEM_NOT_FOUND'],
    ['listing with an unknown status', () => fetch(`${c.api}/api/jobs?status=exploded`, { headers: A }), 400, 'INVALID_QUERY'],
    ['listing 100,000 at once', () => fetch(`${c.api}/api/jobs?limit=100000`, { headers: A }), 400, 'INVALID_QUERY'],
    ['listing with an operator in the query', () => fetch(`${c.api}/api/jobs?status[$ne]=x`, { headers: A }), 400, 'INVALID_QUERY'],
    ['an unknown endpoint', () => fetch(`${c.api}/api/admin`, { headers: A }), 404, 'NOT_FOUND'],
    ['cancelling a job that ended', () => fetch(`${c.api}/api/jobs/${endedJob}/cancel`, { method: 'POST', headers: A }), 409, 'JOB_FINISHED'],
  ] as const)('%s', async (_what, send, status, code) => {
    await expectError(await send(), status, code);
  });

  it('listing with a garbage cursor returns no one else’s jobs', async () => {
    const res = await fetch(`${c.api}/api/jobs?cursor=${encodeURIComponent('{"$gt":""}')}`, { headers: B });
    if (res.status === 200) expect(((await res.json()) as { items: { id: string }[] }).items.map((j) => j.id)).not.toContain(mine);
    else await expectError(res, 400, 'INVALID_QUERY');
  });
});

describe('forged and replayed events on the bus', () => {
  it('a job.completed that violates its schema is parked with the reason; the job does not change', async () => {
    const id = endedJob;
    const before = await c.jobs.get(id);
    const forged = { id: uuidv7(), type: 'job.completed', version: 1, jobId: id, occurredAt: new Date().toISOString(), payload: { stems: 'all of them', model: 7 } };
    await withChannel(async (ch) => {
      ch.publish(EXCHANGE, 'job.completed', Buffer.from(JSON.stringify(forged)), { messageId: forged.id, persistent: true, headers: { [HEADERS.eventVersion]: 1 } });
      const parked = await eventually(async () => {
        const m = await ch.get(`${QUEUES.status.name}.dlq`, { noAck: false });
        if (m && JSON.parse(m.content.toString()).id !== forged.id) {
          ch.nack(m, false, true);
          return undefined;
        }
        return m || undefined;
      }, { timeoutMs: 15_000, what: 'the forged event in status.job-events.dlq' });
      expect(String(parked.properties.headers?.[HEADERS.parkReason])).toMatch(/job\.completed violates its schema: .*payload\.stems/);
      ch.ack(parked);
    });
    expect(await c.jobs.get(id)).toEqual(before);
  });

  it('a replayed event changes nothing, and a valid job.completed for a job that ended does not revive it', async () => {
    const id = endedJob;
    const before = await c.jobs.get(id);
    const replay = newEvent('job.failed', id, { stage: 'decoding', reason: 'replayed', code: 'X', retryable: false });
    await c.bus.publish(replay);
    await c.bus.publish(replay);
    await c.bus.publish(newEvent('job.completed', id, { stems: [{ name: 'vocals', format: 'wav16', key: `jobs/${id}/stems/vocals.wav`, bytes: 1 }], model: 'htdemucs', timings: {} }));
    // A marker behind them in the same queue: once it is applied, they were too.
    const marker = await accepted(await post(form([audio('marker.wav')])));
    await eventually(async () => (await c.jobs.get(marker))?.stage === 'decoding' || (await c.jobs.get(marker))?.status !== 'pending', { timeoutMs: 30_000, what: 'the marker job processed' });
    expect(await c.jobs.get(id)).toEqual(before);
  });

  it('a job.completed for a job that does not exist creates nothing', async () => {
    const ghost = uuidv7();
    await c.bus.publish(newEvent('job.completed', ghost, { stems: [{ name: 'vocals', format: 'wav16', key: `jobs/${ghost}/stems/vocals.wav`, bytes: 1 }], model: 'htdemucs', timings: {} }));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await c.jobs.get(ghost)).toBeUndefined();
  });
});
