/**
 * 50 short songs uploaded at once to the deployed services (each its own process, the real model,
 * 2 cores): every job completes, exactly once, none is lost, and every service's memory stays
 * bounded. Latency and throughput are printed here and measured by `pnpm bench load`; they are
 * not asserted (shared machines are noisy).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/cluster.js';
import { eventually } from '../support/env.js';
import { runLoad, separatorEngines } from '../support/load.js';
import { ENGINE_MEMORY_GIB } from '@stemflow/separator';

let c: Cluster;
beforeAll(async () => {
  // Every upload comes from this one address: the per-client cap (64 by default) is for the internet.
  c = await startCluster({ env: { MAX_CONNECTIONS_PER_CLIENT: '512' } });
}, 120_000);
afterAll(async () => {
  await c?.stop();
});

it('50 concurrent uploads: all complete once, none lost, memory bounded', { timeout: 600_000 }, async () => {
  const r = await runLoad(c, { jobs: 50, clipSec: 3, timeoutMs: 540_000, pollEveryMs: 200 });
  console.info(
    `load: ${r.ids.length} jobs in ${r.wallSec.toFixed(0)} s, ${r.jobsPerHour.toFixed(0)} jobs/hour, separator busy ${(r.separatorBusy * 100).toFixed(1)} %, ` +
      `GET /api/jobs/{id} p50 ${r.getLatencyMs.p50.toFixed(1)} ms p99 ${r.getLatencyMs.p99.toFixed(1)} ms (n=${r.getLatencyMs.n}), peak RSS MiB ${JSON.stringify(r.peakRssMiB)}`,
  );
  expect(r.statuses).toEqual({ completed: 50 });
  await eventually(() => r.ids.every((id) => c.terminal.get(id)?.length), { timeoutMs: 30_000, what: 'every job.completed on the exchange' });
  await new Promise((res) => setTimeout(res, 2000));
  for (const id of r.ids) expect(c.terminal.get(id)!.map((e) => e.type), id).toEqual(['job.completed']);
  for (const id of r.ids) expect((await c.jobs.get(id))!.stems).toHaveLength(4);
  // Bounds with room: each engine's run peaks near 2.8 GiB (the separator opens one per core); the
  // others stream and hold no song whole.
  expect(r.peakRssMiB.separator).toBeLessThan((await separatorEngines(c)) * ENGINE_MEMORY_GIB * 1024 + 1024);
  for (const s of ['gateway', 'decoder', 'status'] as const) expect(r.peakRssMiB[s], s).toBeLessThan(512);
});
