/**
 * Many short songs at once through a deployed stemflow: what the load test checks and the load
 * benchmark prints. Uploads all jobs concurrently, polls GET /api/jobs/{id} the whole time (its
 * latency while the separator is busy), samples every service's RSS, and reads the separator's
 * busy time from its /metrics.
 */
import { readFileSync } from 'node:fs';
import { ffmpeg } from './audio.js';
import type { Cluster } from './cluster.js';
import { eventually } from './env.js';
import { uploadJob } from './jobs-http.js';

export type LoadResult = {
  ids: string[];
  statuses: Record<string, number>;
  getLatencyMs: { p50: number; p99: number; max: number; n: number };
  peakRssMiB: Record<string, number>;
  wallSec: number;
  /** Completions per hour between the first and the last completion (steady state). */
  jobsPerHour: number;
  /** Model-run time per engine / wall time over the same steady-state window: how busy the engines were. */
  separatorBusy: number;
};

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** Seconds of model runs so far, per engine (the separator runs several side by side): one read of its /metrics. */
async function separateSeconds(c: Cluster): Promise<number> {
  const text = await separatorMetrics(c);
  const runs = Number(/^stemflow_model_run_seconds_sum\{device="[a-z]+"\} (\S+)/m.exec(text)?.[1] ?? 0);
  return runs / enginesIn(text);
}

const separatorMetrics = async (c: Cluster) => (await fetch(`http://127.0.0.1:${c.services.separator!.port}/metrics`)).text();
const enginesIn = (metrics: string) => Number(/^stemflow_separator_engines (\S+)/m.exec(metrics)?.[1] ?? 1);

/** The engines the cluster's separator opened (its metric). */
export async function separatorEngines(c: Cluster): Promise<number> {
  return enginesIn(await separatorMetrics(c));
}

export async function runLoad(c: Cluster, o: { jobs: number; clipSec: number; timeoutMs: number; pollEveryMs: number }): Promise<LoadResult> {
  const clips = await Promise.all(
    Array.from({ length: o.jobs }, (_, i) =>
      ffmpeg(['-f', 'lavfi', '-i', `sine=frequency=${110 + i * 7}:duration=${o.clipSec}`, '-f', 'lavfi', '-i', `anoisesrc=d=${o.clipSec}:a=0.05:s=${i + 1}`, '-filter_complex', 'amix=inputs=2', '-ac', '2', '-c:a', 'pcm_s16le', '-f', 'wav', '-']),
    ),
  );
  const peak: Record<string, number> = {};
  const sampler = setInterval(() => {
    for (const s of Object.values(c.services)) {
      if (!s?.proc?.pid || s.proc.exitCode !== null) continue;
      peak[s.name] = Math.max(peak[s.name] ?? 0, rssMiB(s.proc.pid));
    }
  }, 500);
  const t0 = Date.now();
  const ids = await Promise.all(clips.map((wav, i) => uploadJob(c.api, { name: `load-${i}.wav`, data: wav })));

  // Clients polling their jobs the whole time, as the web page and the CLI do.
  const latencies: number[] = [];
  let polling = true;
  const poller = (async () => {
    let k = 0;
    while (polling) {
      const s = performance.now();
      await fetch(`${c.api}/api/jobs/${ids[k++ % ids.length]}`).then((r) => r.arrayBuffer());
      latencies.push(performance.now() - s);
      await new Promise((r) => setTimeout(r, o.pollEveryMs));
    }
  })();

  const done = new Map<string, number>();
  let sepAtFirst = 0;
  let firstAt = 0;
  await eventually(async () => {
    for (const id of ids) {
      if (done.has(id)) continue;
      const j = await c.jobs.get(id);
      if (j && ['completed', 'failed', 'canceled'].includes(j.status)) {
        done.set(id, Date.now());
        if (done.size === 1) {
          firstAt = Date.now();
          sepAtFirst = await separateSeconds(c);
        }
      }
    }
    return done.size === ids.length;
  }, { timeoutMs: o.timeoutMs, intervalMs: 250, what: `all ${o.jobs} jobs to end` });
  const lastAt = Date.now();
  const sepAtLast = await separateSeconds(c);
  polling = false;
  await poller;
  clearInterval(sampler);

  const statuses: Record<string, number> = {};
  for (const id of ids) {
    const s = (await c.jobs.get(id))!.status;
    statuses[s] = (statuses[s] ?? 0) + 1;
  }
  const window = (lastAt - firstAt) / 1000;
  return {
    ids,
    statuses,
    getLatencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: Math.max(...latencies), n: latencies.length },
    peakRssMiB: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v)])),
    wallSec: (lastAt - t0) / 1000,
    jobsPerHour: window > 0 ? ((done.size - 1) / window) * 3600 : NaN,
    separatorBusy: window > 0 ? (sepAtLast - sepAtFirst) / window : NaN,
  };
}
