/**
 * pnpm bench throughput — how many jobs an hour one separator process does: a batch of 20 s songs
 * (the generated mixture, decoded PCM already stored) queued at once, through the whole separator
 * use case (plan, chunks, checkpoints, stems encoded) on the in-process bus and filesystem store,
 * for the old default (one fp32 engine, one job at a time), the fast graph the same way, the
 * defaults (fast, the engines the separator opens, one job more than engines) and the other splits
 * of the cores into engines (SEPARATOR_ENGINES × threads ∈ {2×cores/2, …}). Each
 * configuration in its own process (its peak RSS is its own): jobs/hour, job latency p50/p95 from
 * queued to completed, peak RSS, and the main thread's event-loop delay p99 while they run. BENCH_JOBS (default 4) songs per batch.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SR = 44100;
const JOBS = Number(process.env.BENCH_JOBS ?? 4);
const child = process.argv.find((a) => a.startsWith('--child='))?.slice(8);

type Result = { wallSec: number; latencies: number[]; peakRssMiB: number; loopP99Ms: number };

async function run(engines: number, threads: number, quality: 'full' | 'fast', concurrency = engines): Promise<Result> {
  const { InMemoryBus, newEvent } = await import('@stemflow/bus');
  const { QUEUES } = await import('@stemflow/contracts');
  const { FsBlobStore } = await import('@stemflow/storage');
  const { objectKeys } = await import('@stemflow/contracts');
  const { loadEngines, startSeparator } = await import('@stemflow/separator');
  const { createLogger } = await import('@stemflow/telemetry');
  const { makeSources, mixdown } = await import('../support/mixture.js');
  const log = createLogger('bench', 'silent');
  const root = mkdtempSync(join(tmpdir(), 'throughput-'));
  const blobs = new FsBlobStore(root);
  const bus = new InMemoryBus({ log });
  const [l, r] = mixdown(makeSources(20));
  const frames = l.length;
  const pcm = new Float32Array(2 * frames);
  for (let i = 0; i < frames; i++) [pcm[2 * i], pcm[2 * i + 1]] = [l[i]!, r[i]!];
  const options = { stems: ['drums', 'bass', 'other', 'vocals'] as ('drums' | 'bass' | 'other' | 'vocals')[], format: 'wav16' as const, shifts: 1, overlap: 0.25, clip: 'rescale' as const, sample_rate: 'input' as const, residual: false, start: 0, quality };
  const ids = Array.from({ length: JOBS }, () => crypto.randomUUID());
  for (const id of ids) await blobs.put(objectKeys.pcm(id), Buffer.from(pcm.buffer));
  const { pool } = await loadEngines({ device: 'cpu', threads, engines, memArena: false, quality, log });
  const done = new Map<string, number>();
  let finish!: () => void;
  const all = new Promise<void>((res) => (finish = res));
  await bus.subscribe({ ...QUEUES.webhooks, name: 'bench.completed', bindings: ['job.completed', 'job.failed'] }, {
    'job.completed': async (e) => {
      done.set(e.jobId, performance.now());
      if (done.size === JOBS) finish();
    },
    'job.failed': async (e) => {
      process.stderr.write(`job failed: ${e.payload.reason}\n`);
      process.exit(1);
    },
  });
  const sep = await startSeparator({ bus, blobs, log, pool, concurrency });
  // The main thread's event-loop delay while the jobs run (HTTP, health and heartbeats share it).
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  for (const id of ids) await bus.publish(newEvent('job.decoded', id, { options, pcmKey: objectKeys.pcm(id), sampleRate: SR, channels: 2, frames, durationSec: frames / SR, stats: { mean: 0, std: 0.2 } }));
  await all;
  const wallSec = (performance.now() - t0) / 1000;
  loop.disable();
  await sep.stop();
  await pool.close();
  rmSync(root, { recursive: true, force: true });
  return { wallSec, latencies: ids.map((id) => (done.get(id)! - t0) / 1000), peakRssMiB: process.resourceUsage().maxRSS / 1024, loopP99Ms: loop.percentile(99) / 1e6 };
}

if (child) {
  const [e, t, q, c] = child.split(',');
  process.stdout.write(`${JSON.stringify(await run(Number(e), Number(t), q as 'full' | 'fast', Number(c ?? e)))}\n`);
  process.exit(0);
} else {
  const cores = availableParallelism();
  const { autoEngines } = await import('@stemflow/separator');
  const { MALLOC_TUNABLES, MODEL_NODE_OPTIONS } = await import('@stemflow/models');
  const auto = autoEngines(cores, totalmem());
  const autoThreads = Math.max(1, Math.floor(cores / auto));
  const label = (e: number, t: number, c: number) => `${e} engine${e > 1 ? 's' : ''} × ${t} thread${t > 1 ? 's' : ''}, ${c} job${c > 1 ? 's' : ''} at once`;
  // The old default (one fp32 engine, one job at a time), the fast graph the same way and with a
  // job waiting, the defaults (fast; the engines the separator opens; one job more than engines),
  // and every other split of the cores into engines.
  const configs = [
    { quality: 'full' as const, e: 1, t: cores, c: 1 },
    { quality: 'fast' as const, e: 1, t: cores, c: 1 },
    { quality: 'fast' as const, e: 1, t: cores, c: 2 },
    { quality: 'fast' as const, e: auto, t: autoThreads, c: auto + 1, defaults: true },
    ...Array.from({ length: Math.floor(Math.log2(cores)) }, (_, i) => 2 ** (i + 1))
      .filter((e) => e !== auto)
      .map((e) => ({ quality: 'fast' as const, e, t: Math.max(1, Math.floor(cores / e)), c: e + 1 })),
  ].map((x) => ({ ...x, name: `${x.quality} ${label(x.e, x.t, x.c)}${'defaults' in x ? ' (the defaults)' : ''}` }));
  console.log(`separator throughput: ${JOBS} jobs of 20 s queued at once, ${cores} cores, one process per configuration\n`);
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
  // Each configuration BENCH_REPEAT times (default 3), interleaved, medians reported: one run of
  // one configuration moves by ±15 % on this machine.
  const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
  const results = new Map<string, Result[]>();
  for (let i = 0; i < REPEAT; i++) {
    for (const { quality, e, t, c, name } of configs) {
      // As the separator's start script runs it: with the model's malloc settings.
      const out = spawnSync(process.execPath, [MODEL_NODE_OPTIONS, '--import', 'tsx', fileURLToPath(import.meta.url), `--child=${e},${t},${quality},${c}`], { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES } });
      const line = out.stdout.trim().split('\n').pop() ?? '';
      if (out.status !== 0 || !line.startsWith('{')) throw new Error(`${name} failed: ${out.stderr.slice(-2000)}`);
      results.set(name, [...(results.get(name) ?? []), JSON.parse(line) as Result]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`(medians of ${REPEAT} runs per configuration, interleaved)\n`);
  const rows: { name: string; perHour: number }[] = [];
  for (const { name } of configs) {
    const rs = results.get(name)!;
    const perHour = median(rs.map((r) => (JOBS / r.wallSec) * 3600));
    rows.push({ name, perHour });
    const runs = rs.map((r) => ((JOBS / r.wallSec) * 3600).toFixed(0)).join(', ');
    console.log(`${name.padEnd(50)} ${perHour.toFixed(0).padStart(5)} jobs/h (runs: ${runs})   latency p50 ${median(rs.map((r) => pct(r.latencies, 50))).toFixed(1)} s, p95 ${median(rs.map((r) => pct(r.latencies, 95))).toFixed(1)} s   peak RSS ${(median(rs.map((r) => r.peakRssMiB)) / 1024).toFixed(2)} GiB   loop p99 ${median(rs.map((r) => r.loopP99Ms)).toFixed(0)} ms`);
  }
  const base = rows[0]!;
  const defaults = rows.find((r) => r.name.endsWith('(the defaults)'))!;
  const best = rows.reduce((a, b) => (b.perHour > a.perHour ? b : a));
  console.log(`\nagainst ${base.name} (the old default): ${rows.map((r) => `${r.name} ${(r.perHour / base.perHour).toFixed(2)}x`).join(', ')}`);
  console.log(`the defaults: ${(defaults.perHour / base.perHour).toFixed(2)}x (target ≥ 1.4x); most jobs/hour: ${best.name} (${(best.perHour / base.perHour).toFixed(2)}x)`);
}
