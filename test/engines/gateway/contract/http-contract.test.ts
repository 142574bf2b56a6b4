/**
 * What outside tools found the API answering differently from its document, each as a test
 * (problem details, 404/405, a deleted job on every gateway, Last-Event-ID at the end, ids in
 * upper case, text booleans, cursors, a reused job's report, validators and conditional requests,
 * uploads refused by their declared length, CORS), on the whole pipeline with the tiny model.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { PROBLEMS, openApiDocument } from '@stemflow/contracts';
import { EventsHub, createApp, startGateway } from '@stemflow/gateway';
import { parseConfig } from '@stemflow/config';
import { gatewayConfig } from '@stemflow/gateway/config';
import { createLogger } from '@stemflow/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toneWav } from '../../../support/audio.js';
import { eventually } from '../../../support/env.js';
import { tinyStack, type TinyStack } from '../../../support/tiny-stack.js';

const KEY = 'key-a';
const METRICS_TOKEN = 'metrics-token-for-the-test';
const A = { authorization: `Bearer ${KEY}` };
let s: TinyStack;
let wav: Buffer;
/** A second gateway on the same bus, store and read model (its own hub). */
let other: { url: string; close: () => Promise<void> };

beforeAll(async () => {
  s = await tinyStack({ apiKeys: [KEY, 'key-b'], corsOrigins: ['https://app.example.com'], metricsToken: METRICS_TOKEN });
  wav = await toneWav(1.5, 330);
  const log = createLogger('other', 'silent');
  const hub = await EventsHub.start(s.bus, log);
  const app = createApp({ bus: s.bus, blobs: s.blobs, jobs: s.jobs, log }, { maxUploadBytes: 8 << 20, hub, apiKeys: [KEY], ssePollMs: 100 });
  const server = await new Promise<import('node:http').Server>((r) => {
    const srv = app.listen(0, '127.0.0.1', () => r(srv));
  });
  other = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await hub.close();
    },
  };
});
afterAll(async () => {
  await other?.close();
  await s?.close();
});

const submit = async (fields: Record<string, string> = {}, data = wav) => {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  f.append('file', new Blob([new Uint8Array(data)]), 'song.wav');
  return fetch(`${s.url}/api/jobs`, { method: 'POST', body: f, headers: A });
};
const newJob = async (fields: Record<string, string> = {}) => {
  const r = await submit(fields);
  expect(r.status).toBe(201);
  return ((await r.json()) as { id: string }).id;
};
const finished = (id: string) =>
  eventually(async () => {
    const j = (await (await fetch(`${s.url}/api/jobs/${id}`, { headers: A })).json()) as { status: string };
    return ['completed', 'failed', 'canceled'].includes(j.status) ? j : undefined;
  }, { timeoutMs: 30_000, what: `job ${id} to end` });
const problemOf = async (r: Response) => {
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await r.json()) as { type: string; title: string; status: number; detail: string; instance: string; code: string };
};

describe('errors are problem details from the catalogue', () => {
  it('401 carries WWW-Authenticate, and every field of RFC 9457 plus the code', async () => {
    const r = await fetch(`${s.url}/api/jobs`);
    expect([r.status, r.headers.get('www-authenticate')]).toEqual([401, 'Bearer']);
    expect(await problemOf(r)).toEqual({ type: '/api/problems/UNAUTHENTICATED', title: PROBLEMS.UNAUTHENTICATED.title, status: 401, detail: 'send an API key as "Authorization: Bearer <key>"', instance: '/api/jobs', code: 'UNAUTHENTICATED' });
    const t = await fetch(`${s.url}/api/problems/UNAUTHENTICATED`);
    expect(await t.json()).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
  });

  it('a path the API lacks is 404 naming it whole; a method a path lacks is 405 with Allow', async () => {
    const r = await fetch(`${s.url}/api/nope`, { headers: A });
    expect(await problemOf(r)).toMatchObject({ status: 404, code: 'NOT_FOUND', detail: 'no endpoint GET /api/nope' });
    const m = await fetch(`${s.url}/api/jobs`, { method: 'PUT', headers: A });
    expect([m.status, m.headers.get('allow')]).toEqual([405, 'POST, GET, HEAD']);
    expect((await problemOf(m)).code).toBe('METHOD_NOT_ALLOWED');
    const one = await fetch(`${s.url}/api/jobs/${crypto.randomUUID()}`, { method: 'PATCH', headers: A });
    expect([one.status, one.headers.get('allow')]).toEqual([405, 'GET, DELETE, HEAD']);
  });

  it('a JSON submit whose options break their own rules is a 400, not a 500', async () => {
    const r = await fetch(`${s.url}/api/jobs`, { method: 'POST', headers: { ...A, 'content-type': 'application/json' }, body: JSON.stringify({ input_url: 'http://example.com/a.wav', stems: ['vocals'], residual: true }) });
    expect(await problemOf(r)).toMatchObject({ status: 400, code: 'INVALID_OPTIONS' });
  });

  it('a JSON body over 16 KiB is 413 BODY_TOO_LARGE; one that does not parse, 400 INVALID_BODY', async () => {
    const big = await fetch(`${s.url}/api/jobs`, { method: 'POST', headers: { ...A, 'content-type': 'application/json' }, body: JSON.stringify({ input_url: `http://example.com/${'a'.repeat(20_000)}` }) });
    expect(await problemOf(big)).toMatchObject({ status: 413, code: 'BODY_TOO_LARGE' });
    const bad = await fetch(`${s.url}/api/jobs`, { method: 'POST', headers: { ...A, 'content-type': 'application/json' }, body: '{"input_url": ' });
    expect(await problemOf(bad)).toMatchObject({ status: 400, code: 'INVALID_BODY' });
  });

  it('text booleans are true or false, as documented (residual=yes is refused)', async () => {
    expect(await problemOf(await submit({ residual: 'yes' }))).toMatchObject({ status: 400, code: 'INVALID_OPTIONS' });
  });

  it('a cursor this server did not give out is 400 INVALID_CURSOR, not the first page', async () => {
    const r = await fetch(`${s.url}/api/jobs?cursor=garbage`, { headers: A });
    expect(await problemOf(r)).toMatchObject({ status: 400, code: 'INVALID_CURSOR' });
  });

  it("a decode that fails says what is wrong with the file, never the store's path", async () => {
    // A WAV header that promises PCM, then bytes that are not: sniffed as WAV, refused by the decoder.
    const broken = Buffer.concat([wav.subarray(0, 12), Buffer.from('fmt \x10\x00\x00\x00\xff\xff\x02\x00', 'latin1'), Buffer.alloc(4000, 7)]);
    const id = ((await (await submit({}, broken)).json()) as { id: string }).id;
    const job = (await finished(id)) as { status: string; error_message: string };
    expect(job.status).toBe('failed');
    expect(job.error_message).not.toMatch(/\/|file:|stemflow-tiny/);
    expect(job.error_message.length).toBeGreaterThan(10);
  });
});

describe('a job, end to end', () => {
  let id: string;
  beforeAll(async () => {
    id = await newJob();
    expect(((await finished(id)) as { status: string }).status).toBe('completed');
  });

  it('ids are found whatever their case', async () => {
    const r = await fetch(`${s.url}/api/jobs/${id.toUpperCase()}`, { headers: A });
    expect([r.status, ((await r.json()) as { id: string }).id]).toEqual([200, id]);
  });

  it('a finished stem: strong ETag, Last-Modified, immutable; If-None-Match → 304; a stale If-Range → the whole file', async () => {
    const url = `${s.url}/api/jobs/${id}/stems/vocals`;
    const r = await fetch(url, { headers: A });
    const etag = r.headers.get('etag')!;
    const whole = Buffer.from(await r.arrayBuffer());
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(r.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    expect(r.headers.get('last-modified')).toBeTruthy();
    expect((await fetch(url, { headers: { ...A, 'if-none-match': etag } })).status).toBe(304);
    const part = await fetch(url, { headers: { ...A, range: 'bytes=0-9', 'if-range': etag } });
    expect([part.status, (await part.arrayBuffer()).byteLength]).toEqual([206, 10]);
    const stale = await fetch(url, { headers: { ...A, range: 'bytes=0-9', 'if-range': '"another"' } });
    expect([stale.status, Buffer.from(await stale.arrayBuffer()).equals(whole)]).toEqual([200, true]);
  });

  it('416 is a problem, not labelled as audio', async () => {
    const r = await fetch(`${s.url}/api/jobs/${id}/stems/vocals`, { headers: { ...A, range: 'bytes=999999999-' } });
    expect(r.status).toBe(416);
    expect(r.headers.get('content-range')).toMatch(/^bytes \*\/\d+$/);
    expect((await problemOf(r)).code).toBe('RANGE_NOT_SATISFIABLE');
  });

  it('zip, mix and peaks have validators too', async () => {
    for (const path of ['stems.zip', 'mix?stems=vocals,drums', 'stems/bass/peaks']) {
      const r = await fetch(`${s.url}/api/jobs/${id}/${path}`, { headers: A });
      expect(r.status, path).toBe(200);
      await r.arrayBuffer();
      const again = await fetch(`${s.url}/api/jobs/${id}/${path}`, { headers: { ...A, 'if-none-match': r.headers.get('etag')! } });
      expect(again.status, path).toBe(304);
    }
  });

  it('a reused job (same bytes, same options) reports the quality of the stems it shares', async () => {
    const first = (await (await fetch(`${s.url}/api/jobs/${id}`, { headers: A })).json()) as { report: unknown };
    const again = await newJob();
    const reused = (await finished(again)) as { status: string; report: unknown };
    expect(reused.status).toBe('completed');
    expect(first.report).not.toBeNull();
    expect(reused.report).toEqual(first.report);
  });

  it("Last-Event-ID equal to the job's last event: 204, nothing sent again", async () => {
    const r = await fetch(`${s.url}/api/jobs/${id}/events`, { headers: A });
    const text = await r.text();
    const last = [...text.matchAll(/^id: (.+)$/gm)].pop()![1]!;
    expect(text).toMatch(/event: completed/);
    const again = await fetch(`${s.url}/api/jobs/${id}/events`, { headers: { ...A, 'last-event-id': last } });
    expect([again.status, await again.text()]).toEqual([204, '']);
  });
});

describe('a deleted job is gone everywhere', () => {
  it('every route of every gateway answers 404, and an open stream on another gateway ends', async () => {
    const id = await newJob({ clip: 'clamp' });
    // A stream on the other gateway, open before the delete.
    const events: string[] = [];
    const stream = fetch(`${other.url}/api/jobs/${id}/events`, { headers: A }).then(async (r) => {
      const parser = createParser({ onEvent: (e) => void events.push(e.event ?? 'message') });
      const decoder = new TextDecoder();
      for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(c, { stream: true }));
    });
    await eventually(async () => events.length > 0, { timeoutMs: 10_000, what: 'the first event' });
    expect((await fetch(`${s.url}/api/jobs/${id}`, { method: 'DELETE', headers: A })).status).toBe(204);
    await stream; // ended by the server
    for (const base of [s.url, other.url]) {
      for (const path of ['', '/events', '/stems/vocals', '/stems.zip', '/mix', '/stems/vocals/peaks']) {
        const r = await fetch(`${base}/api/jobs/${id}${path}`, { headers: A });
        expect([base === s.url ? 'this' : 'other', path, r.status], await r.clone().text()).toEqual([base === s.url ? 'this' : 'other', path, 404]);
      }
      expect((await fetch(`${base}/api/jobs/${id}/cancel`, { method: 'POST', headers: A })).status).toBe(404);
    }
  });
});

describe('HTTP around the app', () => {
  it('CORS for the configured origins: a preflight without a key, the headers a client reads exposed', async () => {
    const pre = await fetch(`${s.url}/api/jobs`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,idempotency-key' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Idempotency-Key/);
    const r = await fetch(`${s.url}/api/jobs`, { headers: { ...A, origin: 'https://app.example.com' } });
    expect(r.headers.get('access-control-expose-headers')).toMatch(/ETag.*Content-Range.*RateLimit/);
    const stranger = await fetch(`${s.url}/api/jobs`, { headers: { ...A, origin: 'https://evil.example' } });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('an upload whose Content-Length is over the limit: 413 before its body, and Expect: 100-continue gets 413, not 100', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gw-size-'));
    const config = parseConfig(gatewayConfig, { PORT: '0', HOST: '127.0.0.1', MAX_UPLOAD_BYTES: '1000000', STORAGE_ROOT: root });
    const gw = await startGateway({ bus: s.bus, blobs: s.blobs, jobs: s.jobs, log: createLogger('size', 'silent') }, config);
    const port = (gw.server.address() as AddressInfo).port;
    const before = (await s.blobs.list('jobs/')).length;
    try {
      const ask = (expectContinue: boolean) =>
        new Promise<{ status: number; continued: boolean; body: string }>((resolve, reject) => {
          let continued = false;
          const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/api/jobs', headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(50_000_000), ...(expectContinue ? { expect: '100-continue' } : {}) } });
          req.on('continue', () => (continued = true));
          req.on('response', (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => {
              req.destroy(); // the rest of the body is never sent
              resolve({ status: res.statusCode!, continued, body });
            });
          });
          req.on('error', reject);
          if (!expectContinue) req.write('--x\r\n'); // a start of a body, then the answer comes without the rest
          else req.flushHeaders();
        });
      for (const expectContinue of [true, false]) {
        const r = await ask(expectContinue);
        expect([r.status, r.continued, JSON.parse(r.body).code]).toEqual([413, false, 'UPLOAD_TOO_LARGE']);
      }
      expect((await s.blobs.list('jobs/')).length).toBe(before); // nothing of them was stored
    } finally {
      await gw.stop();
    }
  });
});

describe('public surfaces say only what the public needs', () => {
  it('health without a key: each dependency up or down, no path, version or host; with a key and ?details=true, the details', async () => {
    const open = (await (await fetch(`${s.url}/api/health?details=true`)).json()) as { dependencies: Record<string, unknown>[] };
    expect(open.dependencies.map((d) => Object.keys(d).sort())).toEqual(open.dependencies.map(() => ['name', 'ok']));
    expect(JSON.stringify(open)).not.toMatch(/\/tmp|stemflow-tiny|127\.0\.0\.1|ffmpeg \d/);
    const detailed = (await (await fetch(`${s.url}/api/health?details=true`, { headers: A })).json()) as { dependencies: { name: string; detail?: string }[] };
    expect(detailed.dependencies.find((d) => d.name === 'store')?.detail).toMatch(/^filesystem /);
  });

  it('metrics answer only the METRICS_TOKEN', async () => {
    const none = await fetch(`${s.url}/metrics`);
    expect([none.status, none.headers.get('www-authenticate')]).toEqual([401, 'Bearer']);
    expect((await fetch(`${s.url}/metrics`, { headers: A })).status).toBe(401);
    const ok = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect([ok.status, (await ok.text()).includes('stemflow_')]).toEqual([200, true]);
  });

  it('the page and the API send security headers: a CSP of their own scripts, no framing, no referrer, no sniffing', async () => {
    for (const path of ['/', '/docs', '/api/jobs']) {
      const r = await fetch(`${s.url}${path}`, { headers: A });
      const csp = r.headers.get('content-security-policy') ?? '';
      expect(csp, path).toMatch(/frame-ancestors 'none'/);
      expect(csp, path).toMatch(/script-src 'self' 'sha256-[^']+'/);
      expect(csp, path).not.toMatch(/script-src[^;]*unsafe-inline/);
      expect([r.headers.get('referrer-policy'), r.headers.get('x-content-type-options')], path).toEqual(['no-referrer', 'nosniff']);
    }
  });
});

describe('the document says what the routes do', () => {
  const doc = openApiDocument() as unknown as { servers: unknown[]; paths: Record<string, Record<string, { operationId?: string; responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { itemSchema?: unknown; schema?: unknown }> }> }>>; components: { schemas: Record<string, unknown> } };
  const ops = Object.entries(doc.paths).flatMap(([path, o]) => Object.entries(o).filter(([m]) => ['get', 'post', 'delete'].includes(m)).map(([method, op]) => ({ path, method, op })));

  it('has servers, an operationId on every operation, and on every /api operation with a key 401 and 429', () => {
    expect(doc.servers.length).toBeGreaterThan(0);
    expect(ops.filter((o) => !o.op.operationId)).toEqual([]);
    for (const { path, op } of ops.filter((o) => !['getHealth', 'listProblems', 'getProblem'].includes(o.op.operationId!))) {
      expect(Object.keys(op.responses), path).toEqual(expect.arrayContaining(['401', '429']));
      if (path.includes('{id}')) expect(Object.keys(op.responses), path).toEqual(expect.arrayContaining(['400', '404']));
    }
  });

  it('types the event stream, the zip, and the headers integrators read', () => {
    const events = doc.paths['/api/jobs/{id}/events']!.get!.responses['200']!.content!['text/event-stream']!;
    expect(events.itemSchema).toBeDefined();
    expect(doc.paths['/api/jobs/{id}/stems.zip']!.get!.responses['200']!.content!['application/zip']).toBeDefined();
    expect(Object.keys(doc.paths['/api/jobs']!.post!.responses['201']!.headers!)).toEqual(expect.arrayContaining(['Location', 'Idempotent-Replayed', 'RateLimit']));
    expect(Object.keys(doc.paths['/api/jobs/{id}/stems/{stem}']!.get!.responses['206']!.headers!)).toEqual(expect.arrayContaining(['Content-Range', 'ETag']));
    expect(JSON.stringify(doc.components.schemas.WebhookPayload)).not.toMatch(/"additionalProperties":false/);
  });
});
