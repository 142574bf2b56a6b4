/// <reference lib="dom" />
/**
 * The web page in headless Chromium (playwright-core driving Debian's chromium) on the embedded
 * server with API_KEYS set: a key entered once, a real job to its mixer — waveforms drawn from the
 * server's peaks, one Web Audio clock for every stem, solo through the graph's gains, seek, the
 * keyboard — and the server's karaoke mixdown against the sum of its stems. Leaves screenshots in
 * test/artifacts/.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffmpeg } from '../support/audio.js';
import { decodedF32, mixtureWav } from '../support/jobs-http.js';
import { ServiceProcess } from '../support/processes.js';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../..', import.meta.url));
const artifacts = join(root, 'test', 'artifacts');
const port = 19_500 + (process.pid % 400);
const api = `http://127.0.0.1:${port}`;
const KEY = 'page-key-0123';
let app: ServiceProcess;
let browser: Browser;
let song: { wav: Buffer; frames: number };
/** The first test's job, completed: the phone test opens it by its link. */
let firstJob = '';

beforeAll(async () => {
  const data = mkdtempSync(join(tmpdir(), 'page-'));
  app = new ServiceProcess('all-in-one', { AMQP_URL: '', S3_ENDPOINT: '', DATABASE_URL: '', STORAGE_ROOT: data, OTEL_SDK_DISABLED: 'true', HOST: '127.0.0.1', API_KEYS: KEY }, port);
  song = await mixtureWav(20);
  await app.start();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await app?.kill('SIGTERM');
});

type MixerState = { playing: boolean; duration: number; stems: { name: string; gain: number; startOffset: number; hasSource: boolean }[] };
const state = (page: Page) =>
  page.evaluate((): MixerState => {
    const m = (window as any).stemflowMixer;
    return { playing: m.playing, duration: m.duration, stems: m.stems.map((s: any) => ({ name: s.name, gain: s.gain.gain.value, startOffset: s.startOffset, hasSource: !!s.source })) };
  });
const clock = (page: Page) => page.evaluate(() => (window as any).stemflowMixer.clock() as number);
/** RMS of what each stem's source sends now (an analyser between source and gain). */
const levels = (page: Page) =>
  page.evaluate(() =>
    (window as any).stemflowMixer.stems.map((s: any) => {
      const buf = new Float32Array(s.meter.fftSize);
      s.meter.getFloatTimeDomainData(buf);
      return Math.sqrt(buf.reduce((a, v) => a + v * v, 0) / buf.length);
    }) as number[],
  );
/** Per track: the waveform canvases' width and how many of their columns have anything drawn. */
const drawnColumns = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('.track')].map((row) => {
      const host = [...row.querySelectorAll('.wave div')].find((d) => d.shadowRoot);
      const canvases = [...(host?.shadowRoot?.querySelectorAll('canvas') ?? [])] as HTMLCanvasElement[];
      let columns = 0;
      let width = 0;
      for (const c of canvases) {
        const img = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
        width += c.width;
        for (let x = 0; x < c.width; x++) {
          for (let y = 0; y < c.height; y++) if (img.data[(y * c.width + x) * 4 + 3]! > 0) { columns++; break; }
        }
      }
      return { stem: (row as HTMLElement).dataset.stem, columns, width };
    }),
  );
const rms = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
const get = async (path: string) => Buffer.from(await (await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${KEY}` } })).arrayBuffer());

describe('the web page, with API keys on the server', () => {
  it('asks for the key, then takes a song to a mixer: waveforms, one clock, solo, seek, keyboard, the server mixdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'page-'));
    const file = join(dir, 'browser song.wav');
    writeFileSync(file, song.wav);
    const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    const mixRequests: string[] = [];
    page.on('request', (r) => void (r.url().includes('/mix?') && mixRequests.push(r.url())));
    await page.goto(api);
    await page.waitForFunction(() => /needs an API key/.test(document.getElementById('keystate')!.textContent ?? ''));
    await page.fill('#apikey', KEY);
    await page.keyboard.press('Enter'); // saves it
    await page.waitForFunction(() => localStorage.getItem('stemflow.apiKey') !== null);
    expect(await page.locator('#keystate').textContent()).toBe('key saved in this browser');

    await page.selectOption('#format', 'f32'); // exact sums for the mixdown check below
    const seen: number[] = [];
    await page.exposeFunction('reportProgress', (v: number) => void seen.push(v));
    await page.evaluate(() => {
      const bar = document.getElementById('bar') as HTMLProgressElement;
      new MutationObserver(() => (window as any).reportProgress(bar.value)).observe(bar, { attributes: true });
    });
    await page.setInputFiles('#file', file);
    await page.waitForFunction(() => !(document.getElementById('play') as HTMLButtonElement).disabled, undefined, { timeout: 240_000, polling: 250 });
    expect(seen.some((v) => v > 0.2 && v < 1), `progress values seen: ${seen.join(', ')}`).toBe(true);
    expect(await page.locator('#state').textContent()).toContain('completed');
    const s0 = await state(page);
    expect(s0.stems.map((s) => s.name)).toEqual(['drums', 'bass', 'other', 'vocals']);
    expect(s0.duration).toBeCloseTo(20, 1);

    // Waveforms: every stem's canvas has drawn columns across its width (from the server's peaks).
    const drawn = await drawnColumns(page);
    for (const d of drawn) {
      expect(d.width, d.stem).toBeGreaterThan(100);
      expect(d.columns / d.width, `${d.stem}: share of columns drawn`).toBeGreaterThan(0.5);
    }
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'web-page.png'), fullPage: true });

    // Play: the shared clock advances, and every stem's source sends sound, started together.
    await page.click('#play');
    await page.waitForFunction(() => (window as any).stemflowMixer.clock() > 0.5);
    const s1 = await state(page);
    expect(s1.playing).toBe(true);
    expect(s1.stems.every((s) => s.hasSource && s.startOffset === 0)).toBe(true);
    const lv = await levels(page);
    lv.forEach((v, i) => expect(v, `${s1.stems[i]!.name} is sounding`).toBeGreaterThan(1e-4));

    // Solo vocals: the graph's gains mute the other stems.
    await page.click('.track[data-stem=vocals] .solo');
    expect((await state(page)).stems.map((s) => [s.name, s.gain])).toEqual([['drums', 0], ['bass', 0], ['other', 0], ['vocals', 1]]);

    // Seek by clicking the middle of a waveform: every stem restarts from there.
    const box = (await page.locator('.track[data-stem=drums] .wave').boundingBox())!;
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    const s2 = await state(page);
    expect(s2.playing).toBe(true);
    for (const s of s2.stems) expect(s.startOffset, s.name).toBeCloseTo(s2.duration / 2, 0);
    expect(new Set(s2.stems.map((s) => s.startOffset)).size).toBe(1);
    expect(await clock(page)).toBeGreaterThan(s2.duration / 2 - 0.5);
    const head = await page.locator('.track[data-stem=bass] .playhead').evaluate((e) => parseFloat((e as HTMLElement).style.left));
    expect(head).toBeGreaterThan(45);
    await page.screenshot({ path: join(artifacts, 'web-page-playing.png'), fullPage: true });

    // The keyboard: Space pauses and plays, → jumps 5 s; and the controls are reachable by Tab.
    await page.locator('#time').click(); // focus on nothing that takes Space itself
    await page.keyboard.press(' ');
    expect((await state(page)).playing).toBe(false);
    const paused = await clock(page);
    await page.keyboard.press('ArrowRight');
    expect(await clock(page)).toBeCloseTo(Math.min(paused + 5, s2.duration), 1);
    await page.keyboard.press(' ');
    expect((await state(page)).playing).toBe(true);
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'play');
    }
    expect(reached, 'the play button is reachable with Tab').toBe(true);
    await page.keyboard.press('Enter');
    expect((await state(page)).playing).toBe(false);
    await page.click('.track[data-stem=vocals] .solo'); // solo off

    // A double click on Play from 0:00 (play, then pause inside the 50 ms before the sources start):
    // the clock never reads before the start, and Play works again (it died with a negative offset).
    await page.evaluate(() => void ((window as any).stemflowMixer.offset = 0));
    await page.dblclick('#play');
    expect(await clock(page)).toBeGreaterThanOrEqual(0);
    expect(await page.locator('#time').textContent()).not.toContain('-');
    await page.click('#play');
    await page.waitForFunction(() => (window as any).stemflowMixer.clock() > 0.2);
    expect((await state(page)).playing).toBe(true);
    await page.click('#play'); // pause again for what follows

    // Karaoke: the server renders drums + bass + other; it equals the sum of those stems.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#karaoke')]);
    const mixed = readFileSync((await download.path())!);
    expect(mixRequests).toHaveLength(1);
    expect(mixRequests[0]).toMatch(/\/mix\?stems=drums%2Cbass%2Cother&format=f32$/);
    const jobId = /\/jobs\/([^/]+)\/mix/.exec(mixRequests[0]!)![1]!;
    firstJob = jobId;
    expect(new URL(page.url()).hash).toBe(`#/jobs/${jobId}`); // the job's own link
    const parts = await Promise.all(['drums', 'bass', 'other'].map(async (n) => decodedF32(await get(`/api/jobs/${jobId}/stems/${n}`))));
    const mix = decodedF32(mixed);
    expect(mix.length).toBe(parts[0]!.length);
    const sum = new Float32Array(mix.length);
    for (const p of parts) for (let i = 0; i < sum.length; i++) sum[i]! += p[i]!;
    const diff = mix.map((v, i) => v - sum[i]!);
    expect(Math.abs(20 * Math.log10(rms(mix) / rms(sum)))).toBeLessThan(0.1);
    expect(20 * Math.log10(rms(sum) / rms(diff))).toBeGreaterThan(90); // float sums: equal but for rounding
    expect(download.suggestedFilename()).toBe('browser song - drums + bass + other.wav');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('plays on the frame it schedules: the first sound, a loop\'s wrap and every stem after a tempo change and a seek, measured in samples', async () => {
    expect(firstJob).not.toBe('');
    // A tap (an AudioWorklet recorder, the test's own: CSP bypassed for its blob) on every stem's
    // source records what it sends, frame by frame; each recording is matched against the stem's
    // own samples to find the frame where a given sample of the song came out.
    const context = await browser.newContext({ viewport: { width: 1000, height: 1100 }, bypassCSP: true });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(api);
    await page.evaluate((k) => localStorage.setItem('stemflow.apiKey', k), KEY);
    await page.goto(`${api}/#/jobs/${firstJob}`);
    await page.waitForFunction(() => !(document.getElementById('play') as HTMLButtonElement).disabled, undefined, { timeout: 60_000, polling: 100 });
    await page.evaluate(async () => {
      const m = (window as any).stemflowMixer;
      const tap = `registerProcessor('tap', class extends AudioWorkletProcessor {
        constructor(o) { super(); this.buf = new Float32Array(o.processorOptions.frames); this.at = 0; this.start = -1; }
        process(inputs) {
          if (this.at >= this.buf.length) return false;
          if (this.start < 0) this.start = currentFrame;
          const x = inputs[0][0], k = Math.min(128, this.buf.length - this.at);
          if (x) this.buf.set(x.subarray(0, k), this.at);
          this.at += k;
          if (this.at >= this.buf.length) this.port.postMessage({ start: this.start, data: this.buf });
          return true;
        }
      });`;
      await m.ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([tap], { type: 'text/javascript' })));
      /** Records every stem's source for `seconds`, starting now. */
      (window as any).record = (seconds: number) =>
        Promise.all(
          m.stems.map((s: any) => new Promise((resolve) => {
            const node = new AudioWorkletNode(m.ctx, 'tap', { numberOfInputs: 1, numberOfOutputs: 0, processorOptions: { frames: Math.round(seconds * m.ctx.sampleRate) } });
            node.port.onmessage = (e) => { s.meter.disconnect(node); resolve(e.data); };
            s.meter.connect(node);
          })),
        );
      /**
       * The lag (frames) at which a recording best matches the stem's samples from `from` (a frame
       * of the stem) at `rate`, expected at context frame `at`; with the match's residual (dB).
       */
      (window as any).lagOf = (rec: { start: number; data: Float32Array }, stem: any, from: number, rate: number, at: number, search = 512, n = 4096) => {
        const b = stem.buffer.getChannelData(0);
        const want = new Float32Array(n);
        for (let i = 0; i < n; i++) { const p = from + i * rate, k = Math.floor(p), f = p - k; want[i] = b[k]! + f * ((b[k + 1] ?? 0) - b[k]!); }
        const power = want.reduce((a, v) => a + v * v, 0);
        let best = { lag: NaN, err: Infinity };
        for (let lag = -search; lag <= search; lag++) {
          const o = Math.round(at) - rec.start + lag;
          if (o < 0 || o + n > rec.data.length) continue;
          let e = 0;
          for (let i = 0; i < n; i++) { const d = rec.data[o + i]! - want[i]!; e += d * d; }
          if (e < best.err) best = { lag, err: e };
        }
        return { lag: best.lag, residualDb: 10 * Math.log10(best.err / power) };
      };
    });
    type Match = { lag: number; residualDb: number };

    // Play from 5 s: every stem's sample 5·rate comes out on the frame Play scheduled (when·rate).
    const first = await page.evaluate(async () => {
      const m = (window as any).stemflowMixer;
      m.offset = 5;
      const recs = (window as any).record(1);
      const clicked = m.ctx.currentTime;
      (document.getElementById('play') as HTMLButtonElement).click();
      const r = await recs;
      const sr = m.ctx.sampleRate;
      return { lead: m.when - clicked, sr, matches: m.stems.map((s: any, i: number) => (window as any).lagOf(r[i], s, 5 * sr, 1, m.when * sr)) };
    });
    for (const x of first.matches as Match[]) {
      expect(Math.abs(x.lag), `first sound ${x.lag} frames from its scheduled frame`).toBeLessThanOrEqual(128);
      expect(x.residualDb).toBeLessThan(-30);
    }
    expect(new Set(first.matches.map((x: Match) => x.lag)).size, 'every stem starts on the same frame').toBe(1);
    expect(first.lead).toBeLessThanOrEqual(0.06); // Play → first sound: the 50 ms lead that lets every stem start on one frame
    await page.click('#play'); // pause

    // A loop of 6–7 s from its start: after one pass, sample 6·rate again, one second of frames later.
    const wrap = await page.evaluate(async () => {
      const m = (window as any).stemflowMixer;
      m.offset = 6;
      (window as any).stemflowMixer.loop = null;
      const recs = (window as any).record(1.5);
      document.dispatchEvent(new KeyboardEvent('keydown', { key: '[' }));
      m.offset = 7;
      document.dispatchEvent(new KeyboardEvent('keydown', { key: ']' }));
      (document.getElementById('play') as HTMLButtonElement).click();
      const r = await recs;
      const sr = m.ctx.sampleRate;
      return { loop: m.loop, matches: m.stems.map((s: any, i: number) => (window as any).lagOf(r[i], s, 6 * sr, 1, (m.when + 1) * sr)) };
    });
    expect(wrap.loop).toEqual({ a: 6, b: 7, on: true });
    for (const x of wrap.matches as Match[]) {
      expect(Math.abs(x.lag), `the wrap ${x.lag} frames from the loop's end`).toBeLessThanOrEqual(128);
      expect(x.residualDb).toBeLessThan(-30);
    }
    await page.click('#play'); // pause
    await page.keyboard.press('l'); // the loop off

    // Tempo 75 %, then a seek to 10 s while playing: every stem plays sample 10·rate on the same
    // frame (relative offset 0), at 0.75 samples per frame.
    const tempo = await page.evaluate(async () => {
      const m = (window as any).stemflowMixer;
      const t = document.getElementById('tempo') as HTMLInputElement;
      t.value = '0.75';
      t.dispatchEvent(new Event('input'));
      (document.getElementById('play') as HTMLButtonElement).click();
      await new Promise((r) => setTimeout(r, 300));
      const recs = (window as any).record(1.2);
      const seek = document.getElementById('seek') as HTMLInputElement;
      seek.value = '10';
      seek.dispatchEvent(new Event('input'));
      const r = await recs;
      const sr = m.ctx.sampleRate;
      return { rate: m.stems.map((s: any) => s.source.playbackRate.value), matches: m.stems.map((s: any, i: number) => (window as any).lagOf(r[i], s, 10 * sr, 0.75, m.when * sr)) };
    });
    expect(tempo.rate).toEqual([0.75, 0.75, 0.75, 0.75]);
    for (const x of tempo.matches as Match[]) {
      expect(Math.abs(x.lag), `after the seek, ${x.lag} frames from the scheduled frame`).toBeLessThanOrEqual(128);
      expect(x.residualDb).toBeLessThan(-30);
    }
    expect(new Set(tempo.matches.map((x: Match) => x.lag)).size, 'relative offset between stems').toBe(1);
    console.log(`page timing (frames at ${first.sr} Hz): first sound ${first.matches.map((x: Match) => x.lag).join('/')}, loop wrap ${wrap.matches.map((x: Match) => x.lag).join('/')}, after tempo+seek ${tempo.matches.map((x: Match) => x.lag).join('/')}; residuals ${[...first.matches, ...wrap.matches, ...tempo.matches].map((x: Match) => x.residualDb.toFixed(0)).join(' ')} dB`);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('on a phone (390×844), from its link: the page fits, every waveform is drawn, a reload keeps the job; the keyboard does what the hint says; delete from the list', async () => {
    expect(firstJob).not.toBe('');
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(api, { waitUntil: 'load' });
    // The page's first load (its HTML, modules and the waveform library; the API's answers aside)
    // is light: the bodies this fresh context fetched.
    const pageBytes = await page.evaluate(() =>
      [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
        .filter((e) => !new URL(e.name).pathname.startsWith('/api/'))
        .reduce((a, e) => a + (e as PerformanceResourceTiming).encodedBodySize, 0),
    );
    expect(pageBytes).toBeGreaterThan(80_000); // the page, its modules and wavesurfer.js were counted
    expect(pageBytes).toBeLessThan(300_000);
    await page.evaluate((k) => localStorage.setItem('stemflow.apiKey', k), KEY);
    const ready = () => page.waitForFunction(() => !(document.getElementById('play') as HTMLButtonElement).disabled, undefined, { timeout: 60_000, polling: 100 });
    await page.goto(`${api}/#/jobs/${firstJob}`);
    await ready();
    await page.reload(); // the link survives a reload
    await ready();
    expect(new URL(page.url()).hash).toBe(`#/jobs/${firstJob}`);
    expect(await page.locator('#state').textContent()).toContain('completed');

    // The page is no wider than the phone, and every waveform has drawn columns across its own row.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    for (const d of await drawnColumns(page)) {
      expect(d.width, d.stem).toBeGreaterThan(200);
      expect(d.columns / d.width, `${d.stem}: share of columns drawn`).toBeGreaterThan(0.5);
    }
    for (const stem of ['drums', 'bass', 'other', 'vocals']) {
      const box = (await page.locator(`.track[data-stem=${stem}] .dl`).boundingBox())!;
      expect(box.x + box.width, `${stem}'s download link is on screen`).toBeLessThanOrEqual(390);
    }
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'web-page-phone.png'), fullPage: true });

    // Accessible names: each download says which stem, the progress bar and the table are labelled.
    for (const stem of ['drums', 'bass', 'other', 'vocals']) expect(await page.getByRole('link', { name: `download ${stem}` }).count()).toBe(1);
    expect(await page.getByRole('progressbar', { name: 'Job progress' }).count()).toBe(1);
    expect(await page.getByRole('columnheader').allTextContents()).toEqual(['Song', 'State', 'Stems · format', 'Age', 'Actions']);

    // An accessibility checker (axe-core, pinned) finds nothing serious on the page with its mixer open.
    await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
    const violations = await page.evaluate(async () =>
      ((await (window as any).axe.run(document, { resultTypes: ['violations'] })).violations as { id: string; impact: string; nodes: { target: string[] }[] }[]).map((v) => ({ id: v.id, impact: v.impact, where: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) })),
    );
    expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);

    // ← → on a focused volume slider change the volume, not the position.
    await page.focus('.track[data-stem=bass] .volume');
    await page.keyboard.press('ArrowRight');
    const vol = await state(page);
    expect(vol.stems.find((s) => s.name === 'bass')!.gain).toBeCloseTo(1.05, 5);
    expect(await clock(page)).toBe(0);
    // On the seek bar: 5 s, not its 10 ms step.
    await page.focus('#seek');
    await page.keyboard.press('ArrowRight');
    expect(await clock(page)).toBeCloseTo(5, 1);
    // M and S act on the focused track.
    await page.focus('.track[data-stem=drums] .volume');
    await page.keyboard.press('m');
    expect(await page.locator('.track[data-stem=drums] .mute').getAttribute('aria-pressed')).toBe('true');
    expect((await state(page)).stems.find((s) => s.name === 'drums')!.gain).toBe(0);
    await page.keyboard.press('s');
    expect(await page.locator('.track[data-stem=drums] .solo').getAttribute('aria-pressed')).toBe('true');
    await page.keyboard.press('s');
    await page.keyboard.press('m');
    expect(await page.locator('.track[data-stem=drums] .mute').getAttribute('aria-pressed')).toBe('false');
    // A click on M, then Space: play/pause, not M again.
    await page.click('.track[data-stem=other] .mute');
    await page.keyboard.press(' ');
    expect((await state(page)).playing).toBe(true);
    expect(await page.locator('.track[data-stem=other] .mute').getAttribute('aria-pressed')).toBe('true');
    await page.keyboard.press(' ');
    expect((await state(page)).playing).toBe(false);

    // Loop A–B: a drag across a waveform from 25 % to 35 % of the song loops that stretch; every
    // stem's source loops it itself (sample-accurate, all on the same frames) and the clock wraps.
    const wave = (await page.locator('.track[data-stem=vocals] .wave').boundingBox())!;
    const y = wave.y + wave.height / 2;
    await page.mouse.move(wave.x + wave.width * 0.25, y);
    await page.mouse.down();
    await page.mouse.move(wave.x + wave.width * 0.3, y, { steps: 4 });
    await page.mouse.move(wave.x + wave.width * 0.35, y, { steps: 4 });
    await page.mouse.up();
    const loop = await page.evaluate(() => (window as any).stemflowMixer.loop as { a: number; b: number; on: boolean });
    expect(loop.on).toBe(true);
    expect(loop.a).toBeCloseTo(0.25 * vol.duration, 0);
    expect(loop.b).toBeCloseTo(0.35 * vol.duration, 0);
    expect(await page.locator('#loop').getAttribute('aria-pressed')).toBe('true');
    await page.click('#play');
    await page.waitForFunction(() => {
      const w = ((window as any).wrap ??= { max: 0, wrapped: false });
      const t = (window as any).stemflowMixer.clock();
      if (t < w.max - 0.5) w.wrapped = true;
      w.max = Math.max(w.max, t);
      return w.wrapped;
    }, undefined, { timeout: 15_000, polling: 50 });
    const t = await clock(page);
    expect(t).toBeGreaterThanOrEqual(loop.a - 0.01);
    expect(t).toBeLessThan(loop.b);
    const sources = await page.evaluate(() => (window as any).stemflowMixer.stems.map((s: any) => [s.source.loop, s.source.loopStart, s.source.loopEnd]));
    for (const src of sources) expect(src).toEqual([true, loop.a, loop.b]);
    // L turns it off (the stretch stays drawn); [ and ] set its ends at the playhead.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.keyboard.press('l');
    expect(await page.locator('#loop').getAttribute('aria-pressed')).toBe('false');
    await page.keyboard.press(' ');
    await page.evaluate(() => void ((window as any).stemflowMixer.offset = 10));
    await page.keyboard.press('[');
    await page.evaluate(() => void ((window as any).stemflowMixer.offset = 12));
    await page.keyboard.press(']');
    expect(await page.evaluate(() => (window as any).stemflowMixer.loop)).toEqual({ a: 10, b: 12, on: true });

    // Practice: tempo 75 % and +3 semitones. Every stem's source plays at 0.75 from one start time
    // and one offset (relative offset 0), SoundTouch on the sum takes the pitch back and up 3, the
    // clock runs in song time at 0.75; a seek keeps it all.
    await page.keyboard.press('l'); // the loop off
    await page.locator('#tempo').fill('0.75');
    await page.locator('#transpose').fill('3');
    expect(await page.locator('#tempoval').textContent()).toBe('75 %');
    expect(await page.locator('#transposeval').textContent()).toBe('+3 st');
    await page.click('#play');
    const box2 = (await page.locator('.track[data-stem=bass] .wave').boundingBox())!;
    await page.mouse.click(box2.x + box2.width * 0.6, box2.y + box2.height / 2); // seek while playing
    await page.waitForFunction(() => (window as any).stemflowMixer.clock() > 0.6 * (window as any).stemflowMixer.duration + 0.3);
    const practice = await page.evaluate(() => {
      const m = (window as any).stemflowMixer;
      const before = { t: m.clock(), at: m.ctx.currentTime };
      return {
        sources: m.stems.map((s: any) => [s.source.playbackRate.value, s.startOffset]),
        stretch: m.stretch ? [m.stretch.parameters.get('playbackRate').value, m.stretch.parameters.get('pitchSemitones').value] : null,
        before,
      };
    });
    expect(new Set(practice.sources.map((x: number[]) => x.join())).size).toBe(1);
    expect(practice.sources[0][0]).toBeCloseTo(0.75, 5);
    expect(practice.sources[0][1]).toBeCloseTo(0.6 * vol.duration, 0);
    expect(practice.stretch).toEqual([0.75, 3]);
    const lv2 = await levels(page);
    lv2.forEach((v, i) => expect(v, `stem ${i} is sounding at 75 %`).toBeGreaterThan(1e-4));
    await page.click('#practicereset');
    expect(await page.evaluate(() => [(window as any).stemflowMixer.rate, (window as any).stemflowMixer.semitones])).toEqual([1, 0]);
    await page.click('#play'); // pause

    // Delete from the list: the row goes, the mixer closes, the link is cleared, the job is gone.
    await page.click(`#recent tr[data-job="${firstJob}"] .delete`);
    await page.waitForFunction((id) => !document.querySelector(`#recent tr[data-job="${id}"]`), firstJob);
    expect(await page.locator('#mixer').isHidden()).toBe(true);
    expect(new URL(page.url()).hash).toBe('');
    expect((await fetch(`${api}/api/jobs/${firstJob}`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(404);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('listens while it separates: every stem plays on one clock while the job runs, the mixer carries on, and the report shows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'page-'));
    const file = join(dir, 'live song.wav');
    writeFileSync(file, (await mixtureWav(30)).wav);
    const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(api);
    await page.evaluate((k) => localStorage.setItem('stemflow.apiKey', k), KEY);
    await page.reload();
    expect(await page.locator('#listen').isChecked()).toBe(true); // the default: stems stream (clip=clamp)
    await page.check('#residual');
    await page.fill('#start', '5'); // a preview from 5 s: times read as the song's
    await page.setInputFiles('#file', file);
    await page.waitForFunction(() => !document.getElementById('live')!.hidden, undefined, { timeout: 120_000, polling: 100 });
    await page.click('#liveplay');
    // Heard while the job still runs: the clock moves and every stem's source sounds.
    await page.waitForFunction(() => (window as any).stemflowLive.time() > 1, undefined, { timeout: 120_000, polling: 100 });
    expect(await page.locator('#state').textContent()).toContain('processing');
    const heard = await page.evaluate(() =>
      (window as any).stemflowLive.stems.map((s: any) => {
        const buf = new Float32Array(s.meter.fftSize);
        s.meter.getFloatTimeDomainData(buf);
        return { name: s.name, rms: Math.sqrt(buf.reduce((a, v) => a + v * v, 0) / buf.length), sources: s.sources.length };
      }),
    );
    expect(heard.map((h: { name: string }) => h.name)).toEqual(['drums', 'bass', 'other', 'vocals']);
    for (const h of heard) expect(h.rms, `${h.name} is sounding`).toBeGreaterThan(1e-4);
    expect(await page.locator('#liveready').textContent()).toMatch(/^0:(0[5-9]|[12]\d) \/ 0:\d\d ready$/);
    // Muting a stem while listening: its gain goes to 0.
    await page.click('#livestems [data-stem=vocals]');
    expect(await page.evaluate(() => (window as any).stemflowLive.stems.find((s: any) => s.name === 'vocals').gain.gain.value)).toBe(0);
    const before = await page.evaluate(() => (window as any).stemflowLive.time() as number);
    // Done: the mixer takes over where listening was, still playing; the report says what the stems are.
    await page.waitForFunction(() => !(document.getElementById('play') as HTMLButtonElement).disabled, undefined, { timeout: 240_000, polling: 250 });
    await page.waitForFunction(() => (window as any).stemflowMixer.playing === true, undefined, { timeout: 10_000 });
    expect(await clock(page)).toBeGreaterThanOrEqual(before);
    expect(await page.locator('#time').textContent()).toMatch(/^0:(0[5-9]|[12]\d|30) \/ 0:30$/); // song time: the stems start at 0:05
    expect(await page.locator('#report').textContent()).toMatch(/^44\.1 kHz · 0:25 · song − Σ stems: -\d+\.\d dB \(they add up to the song\) · peaks: drums -?\d+\.\d dBFS/);
    expect(await page.locator('#live').isHidden()).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a failed job with its reason, and a rejected file with why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'page-'));
    // A video without an audio track: accepted (a container this server reads), then the job fails.
    writeFileSync(join(dir, 'silent.mp4'), await ffmpeg(['-f', 'lavfi', '-i', 'color=c=red:s=64x64:d=2', '-c:v', 'mpeg4', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov', '-']));
    writeFileSync(join(dir, 'picture.png'), Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'));
    const page = await browser.newPage();
    await page.goto(api);
    await page.evaluate((k) => localStorage.setItem('stemflow.apiKey', k), KEY);
    await page.reload();
    await page.setInputFiles('#file', join(dir, 'silent.mp4'));
    await page.waitForFunction(() => document.getElementById('state')?.textContent?.startsWith('failed'), undefined, { timeout: 60_000 });
    expect(await page.locator('#error').textContent()).toBe('The video has no audio track.');
    expect(await page.locator('#mixer').isHidden()).toBe(true);
    await page.setInputFiles('#file', join(dir, 'picture.png'));
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'rejected');
    expect(await page.locator('#error').textContent()).toMatch(/not audio/);

    // A job submitted elsewhere (here: the API, as the CLI would) appears in the list and moves on
    // its own, without a reload.
    const form = new FormData();
    form.append('file', new Blob([readFileSync(join(dir, 'silent.mp4'))]), 'from elsewhere.mp4');
    const other = (await (await fetch(`${api}/api/jobs`, { method: 'POST', body: form, headers: { authorization: `Bearer ${KEY}` } })).json()) as { id: string };
    await page.waitForFunction((id) => document.querySelector(`#recent tr[data-job="${id}"] .st`)?.textContent === 'failed', other.id, { timeout: 30_000, polling: 200 });
    // Time left in words: 65 s is about 65 s, not "about 2 min".
    expect(await page.evaluate("import('/js/util.js').then(({ fmtEta }) => [fmtEta(65), fmtEta(12), fmtEta(100), fmtEta(600)])")).toEqual(['about 65 s left', 'about 10 s left', 'about 2 min left', 'about 10 min left']);
    await page.close();
  });
});
