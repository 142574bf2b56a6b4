/// <reference lib="dom" />
/**
 * The embedded mode (`pnpm start`: one process, in-process bus, filesystem store, embedded job
 * store, no servers) end to end: over HTTP, through the CLI's `submit`, and through the web page
 * in headless Chromium (playwright-core driving Debian's chromium), which leaves a screenshot in
 * test/artifacts/.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { eventually } from '../support/env.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodedFrames, expectFourStems, followSse, mixtureWav, uploadJob } from '../support/jobs-http.js';
import { runCli } from '../support/cli.js';
import { ServiceProcess } from '../support/processes.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const artifacts = join(root, 'test', 'artifacts');
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

  describe('the web page in headless Chromium', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('uploads a picked file, shows progress to 100 %, then four playable stems; saves a screenshot', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'page-'));
      const file = join(dir, 'browser song.wav');
      writeFileSync(file, song.wav);
      const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(api);
      await page.selectOption('#format', 'mp3'); // a new job (not deduplicated), and a format browsers play
      const seen: number[] = [];
      await page.exposeFunction('reportProgress', (v: number) => void seen.push(v));
      await page.evaluate(() => {
        const bar = document.getElementById('bar') as HTMLProgressElement;
        new MutationObserver(() => (window as unknown as { reportProgress: (v: number) => void }).reportProgress(bar.value)).observe(bar, { attributes: true });
      });
      await page.setInputFiles('#file', file);
      await page.waitForFunction(() => document.querySelectorAll('#stemlist audio').length === 4, undefined, { timeout: 180_000, polling: 250 });
      expect(await page.locator('#bar').evaluate((b: HTMLProgressElement) => b.value)).toBe(1);
      expect(await page.locator('#detail').textContent()).toContain('100 %');
      expect(await page.locator('#state').textContent()).toContain('completed');
      expect(seen.some((v) => v > 0.2 && v < 1), `progress values seen: ${seen.join(', ')}`).toBe(true);

      // Each player loads its stem and can play it: metadata read, the right length, no media error.
      const players = await page.locator('#stemlist audio').evaluateAll((els: HTMLAudioElement[]) =>
        Promise.all(
          els.map(
            (a) =>
              new Promise<{ src: string; duration: number; error: number | null; played: boolean }>((resolve) => {
                a.preload = 'auto';
                a.muted = true;
                a.addEventListener('error', () => resolve({ src: a.src, duration: NaN, error: a.error?.code ?? -1, played: false }), { once: true });
                a.addEventListener('canplay', () => void a.play().then(() => resolve({ src: a.src, duration: a.duration, error: null, played: !a.paused }), () => resolve({ src: a.src, duration: a.duration, error: null, played: false })), { once: true });
                a.load();
              }),
          ),
        ),
      );
      expect(players.map((p) => p.src.split('/').pop())).toEqual(['drums', 'bass', 'other', 'vocals']);
      for (const p of players) {
        expect(p.error, p.src).toBeNull();
        expect(p.played, p.src).toBe(true);
        expect(p.duration, p.src).toBeGreaterThan(19.9);
        expect(p.duration, p.src).toBeLessThan(20.2); // mp3 adds at most a frame of padding
      }
      await page.evaluate(() => document.querySelectorAll('audio').forEach((a) => a.pause()));
      expect(await page.locator('#recent tr').count()).toBeGreaterThanOrEqual(3); // this job and the ones before
      expect(problems).toEqual([]);
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'web-page.png'), fullPage: true });
      await page.close();
    });

    it('shows a readable error for a file that is not audio', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'page-'));
      writeFileSync(join(dir, 'picture.png'), Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'));
      const page = await browser.newPage();
      await page.goto(api);
      await page.setInputFiles('#file', join(dir, 'picture.png'));
      await page.waitForFunction(() => document.getElementById('state')?.textContent === 'rejected');
      expect(await page.locator('#error').textContent()).toMatch(/not audio/);
      await page.close();
    });
  });
});
