/**
 * An input given by URL is a stage of its job: the submit answers 201 before the file is fetched,
 * the decoder fetches it (bytes on SSE), and whatever the source does wrong fails the job with a
 * code and a sentence, leaving nothing stored. Against the whole pipeline on the tiny model, with
 * origins on loopback (allowed: 127.0.0.1 only).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { addressPolicy } from '@stemflow/net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/wait.js';
import { hlsPlaylist, toneWav } from '../support/audio.js';
import { followSse, type SseEvent } from '../support/jobs-http.js';
import { tinyStack, type TinyStack } from '../support/tiny-stack.js';

const MAX_BYTES = 2 * 1024 * 1024;
let s: TinyStack;
let wav: Buffer;
beforeAll(async () => {
  wav = await toneWav(2, 330);
  s = await tinyStack({ policy: addressPolicy(['127.0.0.1/32']), maxUploadBytes: MAX_BYTES, importing: { timeoutMs: 1500 } });
});
afterAll(async () => {
  await s?.close();
});

type Origin = { url: string; hits: string[]; open: () => number };
const servers: Server[] = [];
afterEach(async () => {
  for (const srv of servers.splice(0)) {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
async function origin(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1'): Promise<Origin> {
  const hits: string[] = [];
  let open = 0;
  const srv = createServer((req, res) => {
    hits.push(req.url ?? '');
    open++;
    res.once('close', () => open--);
    handler(req, res);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, host, () => r()));
  return { url: `http://${host}:${(srv.address() as AddressInfo).port}`, hits, open: () => open };
}

const submit = (url: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  fetch(`${s.url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ input_url: url, ...extra }) });
const job = async (id: string) => (await (await fetch(`${s.url}/api/jobs/${id}`)).json()) as any;
const finished = (id: string) => until(`job ${id} to end`, async () => ((j) => (['completed', 'failed', 'canceled'].includes(j.status) ? j : undefined))(await job(id)));
const stored = async (id: string) => (await s.blobs.list(`jobs/${id}/`)).map((o) => o.key.slice(`jobs/${id}/`.length)).sort();

/** Sends `body` in `pieces` parts, one every `everyMs`, with its length announced. */
const trickle = (body: Buffer, pieces: number, everyMs: number, headers: Record<string, string> = {}) => (_q: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(body.length), ...headers });
  const size = Math.ceil(body.length / pieces);
  let at = 0;
  const t = setInterval(() => {
    res.write(body.subarray(at, at + size));
    at += size;
    if (at >= body.length) {
      clearInterval(t);
      res.end();
    }
  }, everyMs);
  res.once('close', () => clearInterval(t));
};

describe('import by URL, as a stage of the job', () => {
  it('answers 201 before the file arrives, reports its bytes on the stream, then separates it', { timeout: 60_000 }, async () => {
    let sent = false;
    const o = await origin((q, res) => {
      res.once('finish', () => (sent = true));
      trickle(wav, 6, 150, { 'content-disposition': 'attachment; filename="Ballad (live).wav"' })(q, res);
    });
    const r = await submit(`${o.url}/download?token=secret`, { stems: ['vocals', 'drums'], format: 'flac' });
    expect(r.status, await r.clone().text()).toBe(201);
    expect(sent).toBe(false); // the answer did not wait for the transfer
    const { id } = (await r.json()) as { id: string };

    const events: SseEvent[] = await followSse(s.url, id);
    const importing = events.filter((e) => e.data.stage === 'importing').map((e) => e.data.import);
    expect(importing.length).toBeGreaterThan(0);
    expect(importing.every((i) => i.total_bytes === wav.length && i.url === `${o.url}/download?…`), JSON.stringify(importing)).toBe(true);
    const received = importing.map((i) => i.received_bytes);
    expect(received).toEqual([...received].sort((a, b) => a - b)); // only grows
    expect(events.at(-1)!.event).toBe('completed');

    const done = await job(id);
    expect(done).toMatchObject({ status: 'completed', filename: 'Ballad (live).wav', import: { received_bytes: wav.length, total_bytes: wav.length, done: true } });
    expect(done.stems.map((x: { name: string; format: string }) => [x.name, x.format])).toEqual([['vocals', 'flac'], ['drums', 'flac']]);
    // The stored input is the origin's bytes; the token in the URL is in no record.
    const record = (await s.jobs.get(id))!;
    expect(record.input).toMatchObject({ size: wav.length, content_type: 'audio/wav', sha256: createHash('sha256').update(wav).digest('hex'), url: `${o.url}/download?…` });
    expect(JSON.stringify(done)).not.toContain('secret');
    expect(o.hits).toEqual(['/download?token=secret']);
  });

  it('a replayed Idempotency-Key answers the same job and fetches once', { timeout: 60_000 }, async () => {
    const o = await origin((_q, res) => res.writeHead(200).end(wav));
    const key = crypto.randomUUID();
    const a = await submit(`${o.url}/a.wav`, {}, { 'idempotency-key': key });
    const b = await submit(`${o.url}/a.wav`, {}, { 'idempotency-key': key });
    expect([a.status, b.status, b.headers.get('idempotent-replayed')]).toEqual([201, 201, 'true']);
    const id = ((await a.json()) as { id: string }).id;
    expect(((await b.json()) as { id: string }).id).toBe(id);
    expect((await finished(id)).status).toBe('completed');
    expect(o.hits).toHaveLength(1);
  });

  it.each([
    ['redirects to a loopback address the setting does not allow', 'URL_REFUSED'],
    ['redirects to the metadata address', 'URL_REFUSED'],
    ['serves an HLS playlist', 'UNSUPPORTED_MEDIA_TYPE'],
    ['serves a web page', 'UNSUPPORTED_MEDIA_TYPE'],
    ['sends its body too slowly', 'IMPORT_TIMEOUT'],
    ['answers 404', 'IMPORT_FAILED'],
    ['redirects forever', 'IMPORT_FAILED'],
    ['says the file is larger than uploads may be', 'INPUT_TOO_LARGE'],
    ['sends more than uploads may be, without saying so', 'INPUT_TOO_LARGE'],
    ['sends nothing', 'EMPTY_FILE'],
  ])('fails the job when the source %s, and keeps nothing', { timeout: 30_000 }, async (what, code) => {
    const inside = await origin((_q, res) => res.end(wav), '127.0.0.2');
    const o = await origin((req, res) => {
      if (what.startsWith('redirects to a loopback')) return void res.writeHead(302, { location: `${inside.url}/x.wav` }).end();
      if (what.startsWith('redirects to the metadata')) return void res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/iam' }).end();
      if (what.startsWith('redirects forever')) return void res.writeHead(302, { location: `${req.url}x` }).end();
      if (what.startsWith('serves an HLS')) return void res.writeHead(200, { 'content-type': 'audio/mpegurl' }).end(hlsPlaylist(`${inside.url}/segment.wav`));
      if (what.startsWith('serves a web page')) return void res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>song</title>${'<p>x</p>'.repeat(1000)}`);
      if (what.startsWith('answers 404')) return void res.writeHead(404).end('no');
      if (what.startsWith('says the file')) return void res.writeHead(200, { 'content-length': String(MAX_BYTES + 1) }).end();
      if (what.startsWith('sends nothing')) return void res.writeHead(200, { 'content-length': '0' }).end();
      if (what.startsWith('sends more')) {
        res.writeHead(200);
        res.write(wav.subarray(0, 44));
        return void res.end(Buffer.alloc(MAX_BYTES + 1, 1));
      }
      res.writeHead(200);
      res.write(wav.subarray(0, 4096));
      const t = setInterval(() => res.write(Buffer.alloc(16)), 200);
      res.on('close', () => clearInterval(t));
    });
    const r = await submit(`${o.url}/song.wav`);
    expect(r.status).toBe(201);
    const { id } = (await r.json()) as { id: string };
    const end = await finished(id);
    expect([end.status, (await s.jobs.get(id))?.error_code], end.error_message).toEqual(['failed', code]);
    expect(end.error_message).toMatch(new RegExp(`^The file at ${o.url.replace(/\./g, '\\.')}/song\\.wav could not be imported: .+\\.$`));
    expect(inside.hits).toEqual([]);
    expect(await stored(id)).not.toContain('input/source');
  });

  it('a name that resolves public at submit and to loopback when fetched is refused where it connects', { timeout: 30_000 }, async () => {
    const o = await origin((_q, res) => res.end(wav), '127.0.0.2');
    const port = new URL(o.url).port;
    let asked = 0;
    // The first answer (the gateway's check) is public; every later one (the decoder's connection) is loopback.
    const resolve = (_h: string, _f: number, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) =>
      cb(null, [{ address: asked++ === 0 ? '93.184.215.14' : '127.0.0.2', family: 4 }]);
    const rebinding = await tinyStack({ policy: addressPolicy(['127.0.0.1/32'], resolve) });
    try {
      const r = await fetch(`${rebinding.url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input_url: `http://songs.example:${port}/a.wav` }) });
      expect(r.status).toBe(201);
      const { id } = (await r.json()) as { id: string };
      const end = await until('the job to fail', async () => ((j) => (j?.status === 'failed' ? j : undefined))(await rebinding.jobs.get(id)));
      expect(end.error_code).toBe('URL_REFUSED');
      expect(end.error_message).toContain('127.0.0.2');
      expect(asked).toBeGreaterThanOrEqual(2);
      expect(o.hits).toEqual([]);
    } finally {
      await rebinding.close();
    }
  });

  for (const how of ['canceled', 'deleted'] as const) {
    it(`a job ${how} while importing stops the transfer at once and keeps nothing`, { timeout: 30_000 }, async () => {
      // 1.5 MiB announced, in 30 pieces every 100 ms: about 3 s to send.
      const body = Buffer.concat([wav, Buffer.alloc(1536 * 1024 - wav.length)]);
      const o = await origin(trickle(body, 30, 100));
      const r = await submit(`${o.url}/long.wav`);
      const { id } = (await r.json()) as { id: string };
      await until('bytes to arrive', async () => (await job(id)).import?.received_bytes > 0);
      expect(o.open()).toBe(1);
      if (how === 'canceled') expect((await fetch(`${s.url}/api/jobs/${id}/cancel`, { method: 'POST' })).status).toBe(202);
      else expect((await fetch(`${s.url}/api/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
      // The decoder drops the connection (it watches for cancels four times a second).
      await until('the origin to see the connection closed', () => o.open() === 0, 2000);
      if (how === 'canceled') {
        expect((await finished(id)).status).toBe('canceled');
        await until('no input to be stored', async () => !(await stored(id)).includes('input/source'), 2000);
      } else {
        expect((await fetch(`${s.url}/api/jobs/${id}`)).status).toBe(404);
        await until('nothing to be stored under the job', async () => (await stored(id)).length === 0, 2000);
      }
      // Nothing comes back later either: the transfer is over, so no writer is left.
      expect(o.open()).toBe(0);
    });
  }
});
