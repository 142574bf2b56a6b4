/**
 * Bad inputs, each with its expected answer, against the deployed services (gateway, decoder and
 * status as their own processes on RabbitMQ, the S3 server and FerretDB). Every case answers a
 * clear 4xx with a JSON body, or ends its job `failed` with a sentence a person understands; after
 * every case nothing is half-written (no object without a job), and the services keep serving.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as tcp } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@stemflow/bus';
import { EXCHANGE, HEADERS, QUEUES } from '@stemflow/contracts';
import { ffconcat, ffmpegFile, hlsPlaylist, id3Wrapped, lyingFlac, toneWav } from '../../support/audio.js';
import { orphanObjects, startCluster, type Cluster } from '../../support/cluster.js';
import { eventually } from '../../support/env.js';
import { ServiceProcess } from '../../support/processes.js';
import { s3Client } from '../../support/s3.js';
import { withChannel } from '../../support/rabbit.js';

const A = { authorization: 'Bearer key-a' };
const B = { authorization: 'Bearer key-b' };
let c: Cluster;
let wav: Buffer;
/** A job of key A that ended (failed: no separator runs here). */
let endedJob: string;

beforeAll(async () => {
  c = await startCluster({
    services: ['status', 'decoder', 'gateway'],
    env: {
      API_KEYS: 'key-a,key-b',
      MAX_UPLOAD_BYTES: String(12 * 1024 * 1024),
      HTTP_IDLE_TIMEOUT_SEC: '2',
      REQUEST_HEAD_TIMEOUT_SEC: '3',
      UPLOAD_MIN_BYTES_PER_SEC: '20000',
      MAX_DURATION_SEC: '600',
      // The mass slow-client case opens 400 connections from this one address.
      MAX_CONNECTIONS_PER_CLIENT: '2000',
      MAX_CONNECTIONS: '4000',
    },
  });
  wav = await toneWav(1);
  // Anything the decoder could be tricked into fetching lands here, and must not.
  listener = createServer((req, res) => {
    probes.push(`${req.method} ${req.url} ${req.headers['user-agent'] ?? ''}`);
    res.writeHead(200, { 'content-type': 'audio/mpeg' }).end(wav);
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  probeUrl = `http://127.0.0.1:${(listener.address() as { port: number }).port}/ssrf-probe.mp3`;
}, 120_000);
afterAll(async () => {
  await c?.stop();
  listener?.close();
});
let listener: Server;
let probeUrl = '';
const probes: string[] = [];
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
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as { code: string; detail: string };
  expect({ status: res.status, code: body.code }).toEqual({ status, code: typeof code === 'string' ? code : expect.stringMatching(code) });
  expect(body.detail.length).toBeGreaterThan(5);
  if (message) expect(body.detail).toMatch(message);
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
    ['a JSON body', () => post('{"file":"song.wav"}', A, { 'content-type': 'application/json' }), 400, 'MISSING_FILE'],
    ['no file, options only', () => post(form([{ field: 'format', data: 'flac' }])), 400, 'MISSING_FILE'],
    ['the file in the wrong field', () => post(form([{ ...audio(), field: 'audio' }])), 400, 'UNEXPECTED_FILE'],
    ['two files', () => post(form([audio('a.wav'), audio('b.wav')])), 400, 'UNEXPECTED_FILE'],
    ['zero bytes', () => post(form([audio('empty.wav', Buffer.alloc(0))])), 400, 'EMPTY_FILE'],
    ['text named .mp3, sent as audio/mpeg', () => post(form([{ field: 'file', name: 'song.mp3', data: 'la la la, not a song\n'.repeat(300), type: 'audio/mpeg' }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a PNG image', () => post(form([{ field: 'file', name: 'cover.wav', data: Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex') }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['an ELF executable', () => post(form([{ field: 'file', name: 'song.exe', data: Buffer.concat([Buffer.from('7f454c460201010000000000000000000200', 'hex'), Buffer.alloc(5000)]) }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a zip archive', () => post(form([{ field: 'file', name: 'stems.zip', data: Buffer.concat([Buffer.from('504b0304140000000800', 'hex'), Buffer.alloc(5000, 1)]) }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['over MAX_UPLOAD_BYTES (12 MiB)', () => post(form([audio('big.wav', Buffer.concat([wav, Buffer.alloc(13 << 20)]))])), 413, 'UPLOAD_TOO_LARGE'],
    ['a plain-text HLS playlist', () => post(form([{ field: 'file', name: 'list.m3u8', data: hlsPlaylist('http://127.0.0.1:1/x.mp3'), type: 'audio/mpegurl' }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a plain ffconcat script', () => post(form([{ field: 'file', name: 'list.mp3', data: ffconcat('/etc/passwd'), type: 'audio/mpeg' }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a MIDI file (a sniffed format this server does not decode)', () => post(form([{ field: 'file', name: 'song.mid', data: Buffer.from('4d546864000000060000000100604d54726b0000000400ff2f00', 'hex'), type: 'audio/midi' }])), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a non-ASCII API key ("clé")', () => post(form([audio()]), { authorization: 'Bearer cl\u00e9' }), 401, 'UNAUTHENTICATED'],
    ['an API key one byte longer than a real one', () => post(form([audio()]), { authorization: 'Bearer key-aa' }), 401, 'UNAUTHENTICATED'],
    ['shifts=-1', () => post(form([{ field: 'shifts', data: '-1' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['format=exe', () => post(form([{ field: 'format', data: 'exe' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['an unknown stem', () => post(form([{ field: 'stems', data: 'drums,kazoo' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['overlap=2', () => post(form([{ field: 'overlap', data: '2' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['two_stems=drums', () => post(form([{ field: 'two_stems', data: 'drums' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['an unknown option field', () => post(form([{ field: 'model', data: '../../evil.onnx' }, audio()])), 400, 'INVALID_OPTIONS'],
    ['25 form fields', () => post(form([...Array.from({ length: 25 }, (_, i) => ({ field: `f${i}`, data: 'x' })), audio()])), 400, /TOO_MANY_(FIELDS|PARTS)/],
    ['a 3 KB option value', () => post(form([{ field: 'format', data: 'w'.repeat(3072) }, audio()])), 400, 'FIELD_TOO_LONG'],
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
  it('a 0.3 s FLAC whose header claims 2^36 samples is not refused: lengths in headers are hints, the decoded audio is measured', async () => {
    const flac = lyingFlac(await ffmpegFile(['-f', 'lavfi', '-i', 'sine=frequency=330:duration=0.3', '-ac', '2', '-c:a', 'flac'], 'flac'), 2 ** 36 / 44100);
    const id = await accepted(await post(form([{ field: 'file', name: 'liar.flac', data: flac, type: 'audio/flac' }])));
    const job = await eventually(async () => {
      const j = await c.jobs.get(id);
      return j?.status === 'failed' || (j?.input.duration_sec ?? 0) > 0 ? j : undefined;
    }, { timeoutMs: 30_000, what: 'the decode' });
    expect([job.status, job.error_message]).toEqual(['processing', null]);
    expect(job.input.duration_sec).toBeCloseTo(0.3, 1);
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

/** A raw TCP connection to the gateway that has sent `head`: what it answers, and when it closes. */
function rawConnection(head: string | Buffer) {
  const url = new URL(c.api);
  const sock = tcp(Number(url.port), url.hostname);
  let response = '';
  sock.on('data', (d) => (response += d.toString()));
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.write(head);
  return { sock, closed, response: () => response };
}

describe('slow and broken clients', () => {
  /** Opens a raw upload: headers and the first part of a multipart body, then lets the test decide. */
  function rawUpload(bodyBytes: number) {
    const boundary = 'stemflowtest';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
    const r = rawConnection(`POST /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-a\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + bodyBytes + 100}\r\n\r\n`);
    r.sock.write(head);
    return r;
  }
  const jobCount = async () => (await c.jobs.list({ limit: 100 })).items.length;

  it('slow-loris: an upload that stalls gets 408 after the idle timeout and leaves nothing', async () => {
    const before = await jobCount();
    const u = rawUpload(1 << 20);
    u.sock.write(wav.subarray(0, 64 * 1024)); // then nothing more
    await u.closed;
    expect(u.response()).toMatch(/^HTTP\/1\.1 408/);
    expect(u.response()).toMatch(/"code":"(REQUEST_TIMEOUT|UPLOAD_TOO_SLOW)"/);
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
    ['a stem before the job completed', () => fetch(`${c.api}/api/jobs/${mine}/stems/vocals`, { headers: A }), 409, 'JOB_NOT_COMPLETED'],
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

/** Waits for the decoder to have written a job's PCM manifest (it decoded; no separator runs here). */
const decoded = (id: string) => eventually(async () => (await c.blobs.head(`jobs/${id}/pcm/mix.json`)) !== undefined, { timeoutMs: 60_000, what: `job ${id} decoded` });
const tmp = mkdtempSync(join(tmpdir(), 'abuse-'));
const file = (name: string, data: Buffer | string) => {
  const p = join(tmp, name);
  writeFileSync(p, data);
  return p;
};
const mp3Tone = (sec: number) => ffmpegFile(['-f', 'lavfi', '-i', `sine=frequency=550:duration=${sec}`, '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '64k'], 'mp3');

describe('crafted inputs that would make ffmpeg open something else (S3 mode: the decoder reads presigned URLs)', () => {
  let victim: string;
  let victimFile: string;
  beforeAll(async () => {
    victim = await accepted(await post(form([{ field: 'file', name: 'victim.mp3', data: await mp3Tone(3), type: 'audio/mpeg' }])));
    victimFile = file('victim.mp3', await mp3Tone(3));
  });

  it.each([
    ['an HLS playlist behind a 300 KB ID3 tag, its entry on a loopback listener (named .mp3)', 'evil.mp3', () => id3Wrapped(hlsPlaylist(probeUrl))],
    ['the same named .m3u8', 'evil.m3u8', () => id3Wrapped(hlsPlaylist(probeUrl))],
    ["an HLS playlist behind an ID3 tag, its entry another job's input (relative)", 'rel.mp3', () => id3Wrapped(hlsPlaylist(`../../${victim}/input/source`))],
    ['an HLS playlist behind an ID3 tag, its entry an absolute path on the server', 'abs.mp3', () => id3Wrapped(hlsPlaylist(victimFile))],
    ['an ffconcat script behind an ID3 tag, with a file: entry', 'concat.mp3', () => id3Wrapped(ffconcat(`file:${victimFile}`))],
    ['an ffconcat script behind an ID3 tag, with an http: entry', 'concat2.mp3', () => id3Wrapped(ffconcat(probeUrl))],
    ['an AVI header in front of a playlist', 'fake.avi', () => Buffer.concat([Buffer.from('RIFF\x00\x10\x00\x00AVI LIST', 'latin1'), Buffer.alloc(32), Buffer.from(hlsPlaylist(probeUrl))])],
    ['an MP4 ftyp box in front of a playlist', 'fake.mp4', () => Buffer.concat([Buffer.from('0000001866747970697736d000000000697736d6d703432', 'hex'), Buffer.from(hlsPlaylist(probeUrl))])],
  ] as const)('%s: no other file or URL is read, the job fails with a reason', async (_what, name, make) => {
    const res = await post(form([{ field: 'file', name, data: make(), type: 'audio/mpeg' }]));
    if (res.status === 415) return void (await expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE'));
    const id = await accepted(res);
    await failsWith(id, /could not be read|not audio|no audio track|cut off or damaged|contains no audio/i);
    expect(await c.blobs.list(`jobs/${id}/pcm/`)).toEqual([]);
  });

  it.each([
    ['a Matroska file whose attachment is a playlist, with a real audio track', async () =>
      ffmpegFile(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-attach', file('list.m3u8', hlsPlaylist(probeUrl)), '-metadata:s:t', 'mimetype=application/vnd.apple.mpegurl', '-c:a', 'libvorbis'], 'mkv')],
    ['a Matroska file with subtitle and attachment streams', async () =>
      ffmpegFile(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-i', file('subs.srt', `1\n00:00:00,000 --> 00:00:01,000\n${probeUrl}\n`), '-map', '0:a', '-map', '1:s', '-c:s', 'srt', '-attach', file('cover.txt', probeUrl), '-metadata:s:t', 'mimetype=text/plain', '-c:a', 'flac'], 'mkv')],
    ['an MP3 behind a 10 MB ID3 tag', async () => id3Wrapped(await mp3Tone(2), 10_000_000)],
  ] as const)('%s: only its own audio is decoded', async (_what, make) => {
    const id = await accepted(await post(form([{ field: 'file', name: 'media.bin', data: await make(), type: 'application/octet-stream' }])));
    await decoded(id);
  });

  it("the loopback listener received no request from any of them, and no job decoded another's audio", () => {
    expect(probes).toEqual([]);
  });
});

describe('names, keys and cost', () => {
  it.each([
    ['100 CJK characters', '歌'.repeat(100) + '.wav'],
    ['150 emoji', '🎵'.repeat(150) + '.wav'],
  ])('a file name of %s (over 255 UTF-8 bytes) is cut on a character boundary', async (_what, name) => {
    const id = await accepted(await post(form([audio(name)])));
    const job = (await c.jobs.get(id))!;
    expect(Buffer.byteLength(job.input.filename)).toBeLessThanOrEqual(255);
    expect(job.input.filename.endsWith('.wav')).toBe(true);
    expect(name.startsWith(job.input.filename.slice(0, -4))).toBe(true);
  });

  it('a right-to-left override in a file name is removed (the name cannot pose as another type)', async () => {
    const id = await accepted(await post(form([audio('song\u202Evaw.exe')])));
    expect((await c.jobs.get(id))!.input.filename).toBe('songvaw.exe');
  });

  it('a bearer token of raw UTF-8 bytes gets 401, not 500', async () => {
    const r = rawConnection(Buffer.concat([Buffer.from('GET /api/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer '), Buffer.from('clé🔑', 'utf8'), Buffer.from('\r\n\r\n')]));
    await r.closed;
    expect(r.response()).toMatch(/^HTTP\/1\.1 401/);
    expect(r.response()).toContain('"code":"UNAUTHENTICATED"');
  });

  it('shifts=10 with overlap=0.9 on a 5-minute file fails before decoding: over the model-run budget', async () => {
    const flac = await ffmpegFile(['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '300', '-c:a', 'flac'], 'flac');
    const id = await accepted(await post(form([{ field: 'shifts', data: '10' }, { field: 'overlap', data: '0.9' }, { field: 'file', name: 'costly.flac', data: flac, type: 'audio/flac' }])));
    await failsWith(id, /^The job is too costly: separating 5:00 of audio with shifts 10 and overlap 0\.9 would take [\d,]+ model runs; this server allows at most 1,300 per job/);
    expect(await c.blobs.list(`jobs/${id}/pcm/`)).toEqual([]);
  });

  it('a FLAC whose header says 0:10 but holds 20:00 stops decoding at MAX_DURATION_SEC and keeps no PCM', async () => {
    const flac = lyingFlac(await ffmpegFile(['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '1200', '-c:a', 'flac'], 'flac'), 10);
    const id = await accepted(await post(form([{ field: 'file', name: 'liar.flac', data: flac, type: 'audio/flac' }])));
    await failsWith(id, /^The audio is longer than this server accepts \(10:00\); decoding stopped there\.$/);
    expect(await c.blobs.list(`jobs/${id}/pcm/`)).toEqual([]);
  });

  it('the same lying FLAC with shifts=10, overlap=0.9: decoding stops where the budget ends', async () => {
    const flac = lyingFlac(await ffmpegFile(['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '1200', '-c:a', 'flac'], 'flac'), 10);
    const id = await accepted(await post(form([{ field: 'shifts', data: '10' }, { field: 'overlap', data: '0.9' }, { field: 'file', name: 'liar.flac', data: flac, type: 'audio/flac' }])));
    await failsWith(id, /^The job is too costly: the file holds more than 1:[0-9]{2} of audio, .* Decoding stopped there\.$/);
  });
});

describe('clients that hold connections', () => {
  const gatewayPid = () => c.services.gateway!.proc!.pid!;
  const fds = () => readdirSync(`/proc/${gatewayPid()}/fd`).length;
  const incompleteUploads = async () => {
    const found: unknown[] = [];
    for await (const u of s3Client().listIncompleteUploads(c.env.S3_BUCKET!, 'jobs/', true)) found.push(u);
    return found.length;
  };
  /** A raw connection sending `head` now and then `drip` every `everyMs`, until closed by the server. */
  function dripper(head: string, drip: string, everyMs: number) {
    const { sock, closed, response } = rawConnection(head);
    const t = drip ? setInterval(() => sock.writable && sock.write(drip), everyMs) : undefined;
    void closed.then(() => clearInterval(t));
    return { sock, closed, response, stop: () => (clearInterval(t), sock.destroy()) };
  }
  const uploadHead = (extra = '') =>
    `POST /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-a\r\nContent-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: 10000000\r\n\r\n${extra}`;
  const filePart = '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\nContent-Type: audio/wav\r\n\r\n';

  it.each([
    ['the multipart preamble, one byte every 300 ms', uploadHead(), 'x', 300, /"code":"(REQUEST_TIMEOUT|UPLOAD_TOO_SLOW)"/],
    ['a text field, one byte every 300 ms', uploadHead('--b0undary\r\nContent-Disposition: form-data; name="format"\r\n\r\nw'), 'a', 300, /"code":"(REQUEST_TIMEOUT|UPLOAD_TOO_SLOW)"/],
    ['a part header, one byte every 300 ms', uploadHead('--b0undary\r\nContent-Disp'), 'o', 300, /"code":"(REQUEST_TIMEOUT|UPLOAD_TOO_SLOW)"/],
    ['a preamble that never ends, sent faster than the minimum rate', uploadHead(), 'x'.repeat(8000), 100, /"code":"REQUEST_TIMEOUT"/],
  ] as const)('slow-loris in %s: 408 within the form deadline, nothing kept', async (_what, head, drip, everyMs, code) => {
    const t0 = Date.now();
    const d = dripper(head, drip, everyMs);
    await d.closed;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(d.response()).toMatch(/^HTTP\/1\.1 408/);
    expect(d.response()).toMatch(code);
  });

  it('a request head sent one byte at a time is cut at REQUEST_HEAD_TIMEOUT_SEC', async () => {
    const t0 = Date.now();
    const d = dripper('GET /api/jobs HTTP/1.1\r\nX-Slow: ', 'a', 200);
    await d.closed;
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('100 stalled uploads and 300 slow preambles at once: a normal upload still succeeds; afterwards fds and unfinished uploads are back to baseline', async () => {
    const jobsBefore = (await c.jobs.list({ limit: 100 })).items.length;
    const uploadsBefore = await incompleteUploads();
    const fdsBefore = fds();
    const stalled = Array.from({ length: 100 }, () => dripper(uploadHead(filePart), '', 0));
    for (const s of stalled) s.sock.write(wav.subarray(0, 32 * 1024));
    const slow = Array.from({ length: 300 }, () => dripper(uploadHead(), 'x', 1000));
    await eventually(() => fds() >= fdsBefore + 300, { timeoutMs: 10_000, what: 'the gateway holding the slow connections' });
    // Meanwhile a real client is served.
    const id = await accepted(await post(form([audio('meanwhile.wav')])));
    expect((await c.jobs.get(id))?.status).toBeDefined();
    await Promise.all([...stalled, ...slow].map((x) => x.closed));
    for (const x of [...stalled, ...slow]) expect(x.response()).toMatch(/^HTTP\/1\.1 408/);
    await eventually(() => fds() <= fdsBefore + 5, { timeoutMs: 15_000, what: `gateway fds back to ${fdsBefore} (now ${fds()})` });
    expect(await incompleteUploads()).toBeLessThanOrEqual(uploadsBefore);
    expect((await c.jobs.list({ limit: 100 })).items.length).toBe(jobsBefore + 1);
  });

  it('past MAX_CONNECTIONS_PER_CLIENT a client gets 503 with Retry-After at once, never a hang', async () => {
    const port = 21_000 + (process.pid % 500);
    const gw = new ServiceProcess('gateway', { ...c.env, API_KEYS: 'key-a', MAX_CONNECTIONS_PER_CLIENT: '4' }, port);
    await gw.start();
    try {
      const held = Array.from({ length: 4 }, () => tcp(port, '127.0.0.1').on('error', () => {}));
      await Promise.all(held.map((s) => new Promise((r) => s.once('connect', r))));
      // (fetch would reuse the keep-alive connection left by the start-up probe: a new one is opened by hand)
      const probe = tcp(port, '127.0.0.1');
      let answer = '';
      probe.on('data', (d) => (answer += d.toString()));
      probe.write('GET /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-a\r\n\r\n');
      await new Promise((r) => probe.once('close', r));
      expect(answer).toMatch(/^HTTP\/1\.1 503/);
      expect(answer).toMatch(/\r\nRetry-After: 5\r\n/);
      expect(answer).toContain('"code":"TOO_MANY_CONNECTIONS"');
      for (const s of held) s.destroy();
      await eventually(async () => (await fetch(`http://127.0.0.1:${port}/api/jobs`, { headers: A })).status === 200, { what: 'served again once the connections closed' });
    } finally {
      await gw.kill('SIGTERM');
    }
  });
});

describe('processes that refuse to start with one line', () => {
  /** Runs a service as its start script does; resolves with its exit code and output. */
  const startAlone = (service: string, env: Record<string, string>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', `services/${service}/src/main.ts`], { env: { ...process.env, ...c.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
      p.on('close', (code) => (clearTimeout(t), resolve({ code, out })));
    });

  it.each([',', ' , ', 'key-a,,key-b'])('API_KEYS=%j (authentication would silently be off)', async (keys) => {
    const r = await startAlone('gateway', { API_KEYS: keys });
    expect(r.code).toBe(1);
    expect(r.out.trim().split('\n')).toHaveLength(1);
    expect(r.out).toMatch(/API_KEYS="\*\*\*": has an empty key/);
  });

  it('a decoder on a machine without ffmpeg says so and exits 1', async () => {
    const r = await startAlone('decoder', { PATH: dirname(process.execPath) });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^stemflow decoder cannot start: ffmpeg and ffprobe are not installed or not on PATH: install ffmpeg/);
  });
});
