/**
 * The embedded mode (`pnpm start`: one process, in-process bus, filesystem store, embedded job
 * store, no servers) end to end: over HTTP and through the CLI's `submit` (the web page, with an
 * API key: test/e2e/web-page.test.ts).
 */
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { eventually } from '../support/env.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodedFrames, expectFourStems, followSse, mixtureWav, uploadJob } from '../support/jobs-http.js';
import { runCli } from '../support/cli.js';
import { ServiceProcess } from '../support/processes.js';

const port = 19_000 + (process.pid % 1000);
const api = `http://127.0.0.1:${port}`;
let app: ServiceProcess;
let song: { wav: Buffer; frames: number };

beforeAll(async () => {
  const data = mkdtempSync(join(tmpdir(), 'embedded-'));
  // Blank URLs: whatever the calling shell has, this process runs with no servers at all.
  // Loopback allowed as an outbound target: the test's own file server and webhook receiver.
  app = new ServiceProcess('all-in-one', { AMQP_URL: '', S3_ENDPOINT: '', DATABASE_URL: '', STORAGE_ROOT: data, OTEL_SDK_DISABLED: 'true', HOST: '127.0.0.1', LOG_LEVEL: 'info', OUTBOUND_ALLOW_CIDRS: '127.0.0.1/32' }, port);
  song = await mixtureWav(20);
  await app.start();
}, 120_000);

afterAll(async () => {
  await app?.kill('SIGTERM');
});

describe('embedded mode (one process, no servers)', () => {
  it('says which adapters it runs on: in-process bus, filesystem store, embedded job store', () => {
    expect(app.log).toMatch(/"bus":"in-process","store":"filesystem","jobs":"embedded"/);
    expect(app.log).toContain(`open http://localhost:${port}`);
  });

  it('HTTP: upload, SSE to completed, four stems of the input length', async () => {
    const id = await uploadJob(api, { name: 'embedded song.wav', data: song.wav });
    await expectFourStems(api, await followSse(api, id), song.frames);
  });

  it('CLI: `stemflow submit` uploads, follows progress, and downloads the stems', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'submit-'));
    const file = join(dir, 'cli song.wav');
    writeFileSync(file, song.wav);
    const out = join(dir, 'stems');
    // Other options than the HTTP test: the same bytes and options would be deduplicated.
    const r = await runCli(['submit', file, '--api', api, '--format', 'flac', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['drums', 'bass', 'other', 'vocals'].map((s) => join(out, `${s}.flac`)));
    expect(r.stderr).toMatch(/separating \d+%/);
    for (const f of readdirSync(out)) expect(decodedFrames(readFileSync(join(out, f))), f).toBe(song.frames);
  });

  it('CLI: `stemflow submit --url --callback-url`: the server fetches the song, and POSTs the signed job.completed to the callback', async () => {
    const hooks: { headers: Record<string, string>; body: string }[] = [];
    const servers = [
      createServer((_req, res) => res.writeHead(200, { 'content-type': 'audio/wav' }).end(song.wav)),
      createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          hooks.push({ headers: req.headers as Record<string, string>, body });
          res.writeHead(204).end();
        });
      }),
    ];
    const [files, receiver] = await Promise.all(servers.map((srv) => new Promise<string>((r) => srv.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`)))));
    try {
      const out = join(mkdtempSync(join(tmpdir(), 'submit-url-')), 'stems');
      const r = await runCli(['submit', '--url', `${files}/songs/url%20song.wav`, '--callback-url', `${receiver}/hook`, '--api', api, '--two-stems', 'vocals', '--out', out, '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['accompaniment.wav', 'vocals.wav']);
      const hook = await eventually(() => hooks[0], { what: 'the webhook' });
      // The receiver's check, with the secret the server gives this (key-less) caller.
      const { secret } = (await (await fetch(`${api}/api/webhooks/secret`)).json()) as { secret: string };
      const event = (new Webhook(secret).verify(hook.body, hook.headers) as { type: string; data: { jobId: string; payload: { stems: { name: string }[] } } });
      expect(event.type).toBe('job.completed');
      expect(event.data.payload.stems.map((x) => x.name).sort()).toEqual(['accompaniment', 'vocals']);
      const job = (await (await fetch(`${api}/api/jobs/${event.data.jobId}`)).json()) as { filename: string; webhook: unknown };
      expect(job.filename).toBe('url song.wav');
      await eventually(async () => ((await (await fetch(`${api}/api/jobs/${event.data.jobId}`)).json()) as { webhook: { status: string } }).webhook.status === 'delivered', { what: 'the delivery recorded' });
      expect(hooks).toHaveLength(1);
    } finally {
      for (const srv of servers) srv.close();
    }
  });

  it('CLI: `stemflow submit` of a file that is not audio says why, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'submit-'));
    writeFileSync(join(dir, 'notes.mp3'), 'these are not audio bytes at all, just text\n'.repeat(50));
    const r = await runCli(['submit', join(dir, 'notes.mp3'), '--api', api]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the server answered 415 to POST \/api\/jobs: .*not audio/);
  });
});
