/**
 * pnpm bench capacity — how many separator replicas a load needs. Measures here what a new
 * replica costs before it is useful (the model loaded: weights verified, session made, per
 * quality), then replays a bursty working day through N fixed replicas and through a KEDA-like
 * autoscaler (test/support/capacity.ts), printing queue wait p50/p95/max and replica-minutes.
 *
 * A job's time is RTF × the song + overhead: CAPACITY_RTF (default 0.38, the fast graph's warm
 * real-time factor with one engine on 2 cores, docs/benchmarks.md: pnpm bench separate) and
 * CAPACITY_OVERHEAD_SEC (default 5: decode, encode, events). CAPACITY_PER_HOUR (default 40),
 * CAPACITY_BURSTS (6 a day of CAPACITY_BURST_SIZE, 25), songs 2.5–5 min, 8 hours; CAPACITY_POD_SEC
 * (default 20: scheduling, image present, process start) is added to the measured model load.
 */
import { performance } from 'node:perf_hooks';
import { dayOfArrivals, simulate } from '../support/capacity.js';

const num = (name: string, d: number) => Number(process.env[name] ?? d);
const RTF = num('CAPACITY_RTF', 0.38);
const OVERHEAD = num('CAPACITY_OVERHEAD_SEC', 5);
const POD = num('CAPACITY_POD_SEC', 20);

const { loadEngines } = await import('@stemflow/separator');
const { createLogger } = await import('@stemflow/telemetry');
const load: Record<string, number> = {};
for (const quality of ['fast', 'full'] as const) {
  const t0 = performance.now();
  const { pool } = await loadEngines({ device: 'cpu', threads: 0, engines: 1, memArena: false, quality, log: createLogger('bench', 'silent') });
  load[quality] = (performance.now() - t0) / 1000;
  await pool.close();
}
console.log(`model load (a new replica's engine ready, weights verified once): fast ${load.fast!.toFixed(1)} s, full ${load.full!.toFixed(1)} s`);
const startup = POD + load.fast!;

const day = dayOfArrivals({ seed: 20261206, hours: 8, perHour: num('CAPACITY_PER_HOUR', 40), bursts: num('CAPACITY_BURSTS', 6), burstSize: num('CAPACITY_BURST_SIZE', 25), minSec: 150, maxSec: 300, rtf: RTF, overheadSec: OVERHEAD });
const work = day.reduce((a, j) => a + j.serviceSec, 0);
console.log(`a day: ${day.length} songs in 8 h, ${(work / 3600).toFixed(1)} engine-hours of separation (RTF ${RTF}, +${OVERHEAD} s a job); a replica ready ${startup.toFixed(0)} s after it is asked for`);
console.log('\n| replicas | wait p50 | wait p95 | wait max | replica-minutes |');
console.log('|---|---|---|---|---|');
const row = (label: string, o: ReturnType<typeof simulate>) =>
  console.log(`| ${label} | ${o.p50.toFixed(0)} s | ${o.p95.toFixed(0)} s | ${o.max.toFixed(0)} s | ${o.replicaMinutes.toFixed(0)}${o.peakReplicas > 0 ? ` (peak ${o.peakReplicas})` : ''} |`);
for (const n of [2, 3, 4, 6, 8]) row(`${n} fixed`, simulate(day, { min: n, max: n, concurrency: 1, startupSec: startup, cooldownSec: 300, pollSec: 15 }));
for (const min of [1, 0]) row(`KEDA ${min}–8, 1 job each, cooldown 300 s`, simulate(day, { min, max: 8, concurrency: 1, startupSec: startup, cooldownSec: 300, pollSec: 15 }));
row('KEDA 0–12, 1 job each, cooldown 300 s', simulate(day, { min: 0, max: 12, concurrency: 1, startupSec: startup, cooldownSec: 300, pollSec: 15 }));
