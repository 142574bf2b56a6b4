/**
 * A queue of separation jobs through separator replicas, simulated event by event: arrivals,
 * each job's service time, replicas that take `startupSec` to become useful after they are asked
 * for, and an autoscaler that asks for ceil((waiting + running) / concurrency) of them, as KEDA does
 * on the queue's depth (the management API's count: waiting and in flight), between min and max,
 * letting one go only after `cooldownSec` without the work for it. Deterministic for a seed.
 */
export type Arrival = { at: number; serviceSec: number };
export type Scaling = { min: number; max: number; concurrency: number; startupSec: number; cooldownSec: number; pollSec: number };
export type Outcome = { waits: number[]; p50: number; p95: number; max: number; replicaMinutes: number; peakReplicas: number; makespanSec: number };

/** mulberry32: a small seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const quantile = (xs: number[], q: number) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** Runs the arrivals (sorted by time) through the replicas; a fixed count when min = max. */
export function simulate(arrivals: Arrival[], s: Scaling): Outcome {
  type Replica = { readyAt: number; busyUntil: number[]; idleSince: number; stopped: boolean; startedAt: number };
  const replicas: Replica[] = [];
  const start = (now: number, warm: boolean) => replicas.push({ readyAt: warm ? now : now + s.startupSec, busyUntil: Array(s.concurrency).fill(-Infinity), idleSince: now, stopped: false, startedAt: now });
  for (let i = 0; i < s.min; i++) start(0, true);
  const queue: Arrival[] = [];
  const waits: number[] = [];
  let next = 0;
  let now = 0;
  let peak = replicas.length;
  let replicaSec = 0;
  const live = () => replicas.filter((r) => !r.stopped);
  const running = (t: number) => live().reduce((n, r) => n + r.busyUntil.filter((b) => b > t).length, 0);
  const end = () => next >= arrivals.length && queue.length === 0 && running(now) === 0;
  let lastPoll = -Infinity;
  while (!end()) {
    // The next moment anything can change: an arrival, a slot freeing, a replica becoming ready, a poll.
    const times = [next < arrivals.length ? arrivals[next]!.at : Infinity, lastPoll + s.pollSec];
    for (const r of live()) {
      if (r.readyAt > now) times.push(r.readyAt);
      for (const b of r.busyUntil) if (b > now) times.push(b);
    }
    const t = Math.max(now, Math.min(...times));
    replicaSec += live().length * (t - now);
    now = t;
    while (next < arrivals.length && arrivals[next]!.at <= now) queue.push(arrivals[next++]!);
    // Free slots of ready replicas take the oldest waiting jobs.
    for (const r of live()) {
      if (r.readyAt > now) continue;
      for (let k = 0; k < r.busyUntil.length && queue.length; k++) {
        if (r.busyUntil[k]! <= now) {
          const job = queue.shift()!;
          waits.push(now - job.at);
          r.busyUntil[k] = now + job.serviceSec;
        }
      }
      if (r.busyUntil.some((b) => b > now)) r.idleSince = now;
    }
    if (now >= lastPoll + s.pollSec) {
      lastPoll = now;
      const want = Math.min(s.max, Math.max(s.min, Math.ceil((queue.length + running(now)) / s.concurrency)));
      while (live().length < want) start(now, false);
      // Scale down only idle replicas, idle for the cooldown, never below what is wanted.
      for (const r of live()) {
        if (live().length <= want) break;
        if (r.busyUntil.every((b) => b <= now) && now - r.idleSince >= s.cooldownSec && now - r.startedAt >= s.cooldownSec) r.stopped = true;
      }
      peak = Math.max(peak, live().length);
    }
  }
  return { waits, p50: quantile(waits, 0.5), p95: quantile(waits, 0.95), max: Math.max(0, ...waits), replicaMinutes: replicaSec / 60, peakReplicas: peak, makespanSec: now };
}

/**
 * A working day of a music app: `perHour` songs on average (Poisson), plus `bursts` times a
 * day `burstSize` songs within two minutes (a playlist dropped in, a batch job); song lengths
 * uniform in [minSec, maxSec]; a job's time = rtf × the song + overheadSec.
 */
export function dayOfArrivals(o: { seed: number; hours: number; perHour: number; bursts: number; burstSize: number; minSec: number; maxSec: number; rtf: number; overheadSec: number }): Arrival[] {
  const r = rng(o.seed);
  const job = (at: number): Arrival => ({ at, serviceSec: o.rtf * (o.minSec + r() * (o.maxSec - o.minSec)) + o.overheadSec });
  const out: Arrival[] = [];
  for (let t = 0; ; ) {
    t += -Math.log(1 - r()) * (3600 / o.perHour);
    if (t > o.hours * 3600) break;
    out.push(job(t));
  }
  for (let b = 0; b < o.bursts; b++) {
    const at = r() * o.hours * 3600;
    for (let i = 0; i < o.burstSize; i++) out.push(job(at + r() * 120));
  }
  return out.sort((a, b) => a.at - b.at);
}
