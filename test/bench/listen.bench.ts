/**
 * pnpm bench listen — listening while a job separates, on the real model, in the embedded process
 * (one model instance, jobs one at a time), songs generated (different bytes each, so none is
 * reused):
 *  1. time to the first audible byte of a stem (the first sample after the WAV header), from the
 *     job's 201, for a 3-minute and a 30-minute song, against one model run (the mean of the
 *     process's `stemflow_model_run_seconds`) and the decode (201 → the job's stage `separating`);
 *     each job is canceled once its first byte came;
 *  2. the cost of delivering stems while they are made: a 60 s song's job time (201 → completed)
 *     with no client and with a client streaming all four stems from the start, alternated, three
 *     of each, medians and their ratio.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ServiceProcess } from '../support/processes.js';

const port = 19_900;
const api = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'listen-bench-'));
const app = new ServiceProcess('all-in-one', { AMQP_URL: '', S3_ENDPOINT: '', DATABASE_URL: '', STORAGE_ROOT: join(dir, 'data'), OTEL_SDK_DISABLED: 'true', HOST: '127.0.0.1', LOG_LEVEL: 'warn', MAX_UPLOAD_BYTES: String(2 ** 30) }, port);

let seed = 1;
/** A song-like WAV (a chord and noise, so the model has work), `sec` long, different bytes every call. */
function song(sec: number): Buffer {
  const file = join(dir, `song-${seed}.wav`);
  const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=${110 + seed}:duration=${sec}:sample_rate=44100`, '-f', 'lavfi', '-i', `anoisesrc=duration=${sec}:sample_rate=44100:amplitude=0.05:seed=${seed++}`, '-filter_complex', 'amix=inputs=2:normalize=0', '-ac', '2', '-c:a', 'pcm_s16le', '-y', file]);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  const b = readFileSync(file);
  rmSync(file);
  return b;
}

async function submit(wav: Buffer): Promise<{ id: string; t0: number }> {
  const f = new FormData();
  f.append('clip', 'clamp');
  f.append('file', new Blob([new Uint8Array(wav)], { type: 'audio/wav' }), 'bench.wav');
  const res = await fetch(`${api}/api/jobs`, { method: 'POST', body: f });
  if (res.status !== 201) throw new Error(`${res.status} ${await res.text()}`);
  return { id: ((await res.json()) as { id: string }).id, t0: performance.now() };
}
const job = async (id: string) => (await (await fetch(`${api}/api/jobs/${id}`)).json()) as { status: string; stage: string | null };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When the job reaches a state (polled every 50 ms). */
async function until(id: string, ok: (j: { status: string; stage: string | null }) => boolean): Promise<number> {
  for (;;) {
    const j = await job(id);
    if (ok(j)) return performance.now();
    if (j.status === 'failed') throw new Error(`job failed: ${JSON.stringify(j)}`);
    await sleep(50);
  }
}

/** Reads a stem until `bytes` past the header came; the time then. */
async function firstAudible(id: string, stem: string, header = 44): Promise<number> {
  const res = await fetch(`${api}/api/jobs/${id}/stems/${stem}`);
  let got = 0;
  for await (const c of res.body as AsyncIterable<Uint8Array>) {
    got += c.length;
    if (got > header) {
      const t = performance.now();
      await (res.body as ReadableStream).cancel().catch(() => {});
      return t;
    }
  }
  throw new Error('the stem ended before any audio');
}

async function modelRunSec(): Promise<number> {
  const text = await (await fetch(`${api}/metrics`)).text();
  const sum = Number(/^stemflow_model_run_seconds_sum\{[^}]*\} (\S+)/m.exec(text)?.[1]);
  const count = Number(/^stemflow_model_run_seconds_count\{[^}]*\} (\S+)/m.exec(text)?.[1]);
  return sum / count;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

await app.start();
try {
  // 1. Time to the first audible byte.
  const ttfb: { min: number; decodeSec: number; firstSec: number }[] = [];
  for (const min of [3, 30]) {
    const { id, t0 } = await submit(song(min * 60));
    const decoded = until(id, (j) => j.stage === 'separating' || j.status === 'completed');
    const first = await firstAudible(id, 'vocals');
    ttfb.push({ min, decodeSec: ((await decoded) - t0) / 1000, firstSec: (first - t0) / 1000 });
    await fetch(`${api}/api/jobs/${id}/cancel`, { method: 'POST' });
    await until(id, (j) => j.status === 'canceled' || j.status === 'completed');
  }
  const run = await modelRunSec();
  console.log(`one model run: ${run.toFixed(2)} s (mean over the runs so far)`);
  for (const r of ttfb) {
    const afterDecode = r.firstSec - r.decodeSec;
    console.log(
      `${String(r.min).padStart(2)} min song: first audible byte ${r.firstSec.toFixed(1)} s after the 201 = decode ${r.decodeSec.toFixed(1)} s + ${afterDecode.toFixed(1)} s (${(afterDecode / run).toFixed(2)} model runs; target ≤ 2)`,
    );
  }

  // 2. What streaming all four stems costs the job.
  const times: { streamed: boolean; sec: number }[] = [];
  for (let i = 0; i < 6; i++) {
    const streamed = i % 2 === 1;
    const { id, t0 } = await submit(song(60));
    const clients = streamed ? ['drums', 'bass', 'other', 'vocals'].map(async (s) => { const r = await fetch(`${api}/api/jobs/${id}/stems/${s}`); await r.arrayBuffer(); }) : [];
    const done = await until(id, (j) => j.status === 'completed');
    await Promise.all(clients);
    times.push({ streamed, sec: (done - t0) / 1000 });
  }
  const plain = median(times.filter((t) => !t.streamed).map((t) => t.sec));
  const streamed = median(times.filter((t) => t.streamed).map((t) => t.sec));
  console.log(`60 s song, job time (median of 3): no client ${plain.toFixed(1)} s, a client streaming all four stems ${streamed.toFixed(1)} s: ${(streamed / plain).toFixed(3)}× (target ≤ 1.05)`);
  console.log(`every job: ${times.map((t) => `${t.streamed ? 'streamed' : 'plain'} ${t.sec.toFixed(1)}`).join(', ')}`);
} finally {
  await app.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
