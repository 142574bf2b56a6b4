/**
 * pnpm bench load — jobs/hour at steady state and the separator's busy time over wall time
 * (target ≥ 0.95: the CPU/GPU never waits for the pipeline), with GET /api/jobs/{id} latency
 * while it is busy (target p99 ≤ 50 ms) and every service's peak RSS. Each service is its own
 * process on the real engines, the real model.
 */
import { startCluster } from '../support/cluster.js';
import { runLoad } from '../support/load.js';

const JOBS = Number(process.env.LOAD_JOBS ?? 50);
// Every upload comes from this one address: the per-client cap (64 by default) is for the internet.
const c = await startCluster({ env: { MAX_CONNECTIONS_PER_CLIENT: '512' } });
try {
  const r = await runLoad(c, { jobs: JOBS, clipSec: 3, timeoutMs: 1_800_000, pollEveryMs: 20 });
  console.log(`jobs: ${JOBS} uploaded at once, 3 s clips; statuses ${JSON.stringify(r.statuses)}; wall ${r.wallSec.toFixed(0)} s`);
  console.log(`throughput at steady state: ${r.jobsPerHour.toFixed(0)} jobs/hour`);
  console.log(`separator busy / wall: ${r.separatorBusy.toFixed(3)} (target ≥ 0.95)`);
  console.log(`GET /api/jobs/{id} while busy: p50 ${r.getLatencyMs.p50.toFixed(1)} ms, p99 ${r.getLatencyMs.p99.toFixed(1)} ms, max ${r.getLatencyMs.max.toFixed(0)} ms over ${r.getLatencyMs.n} requests (target p99 ≤ 50 ms)`);
  console.log(`peak RSS (MiB): ${Object.entries(r.peakRssMiB).map(([k, v]) => `${k} ${v}`).join(', ')}`);
} finally {
  await c.stop();
}
