import { describe, expect, it } from 'vitest';
import { dayOfArrivals, simulate, type Arrival } from '../support/capacity.js';

const fixed = (n: number, concurrency = 1) => ({ min: n, max: n, concurrency, startupSec: 30, cooldownSec: 300, pollSec: 15 });

describe('the capacity simulation', () => {
  it('with room for every job, nobody waits; one replica too few, the queue grows by what it cannot do', () => {
    const every60: Arrival[] = Array.from({ length: 60 }, (_, i) => ({ at: i * 60, serviceSec: 50 }));
    expect(simulate(every60, fixed(1)).max).toBe(0);
    // 90 s of work a minute on one replica: the last of 60 jobs waits 59 × 30 s.
    const every60slow = every60.map((a) => ({ ...a, serviceSec: 90 }));
    expect(simulate(every60slow, fixed(1)).max).toBeCloseTo(59 * 30, 6);
    expect(simulate(every60slow, fixed(2)).max).toBe(0);
    // Two engines in one replica are two replicas' worth of slots.
    expect(simulate(every60slow, fixed(1, 2)).max).toBe(0);
  });

  it('an autoscaler from zero makes the first job wait the startup, then keeps up; replica-minutes count only what ran', () => {
    const burst: Arrival[] = Array.from({ length: 8 }, (_, i) => ({ at: 1000 + i, serviceSec: 100 }));
    const out = simulate(burst, { min: 0, max: 8, concurrency: 1, startupSec: 30, cooldownSec: 300, pollSec: 15 });
    expect(out.peakReplicas).toBe(8);
    expect(out.p50).toBeGreaterThanOrEqual(30); // the model loads before the first chunk
    expect(out.max).toBeLessThan(30 + 15 + 8); // one poll, the startup, the spread of arrivals
    expect(out.replicaMinutes).toBeLessThan((8 * (30 + 100 + 300 + 15 * 2)) / 60);
    expect(out.replicaMinutes).toBeGreaterThan((8 * (30 + 100)) / 60);
  });

  it('makes the same day for the same seed', () => {
    const o = { seed: 7, hours: 8, perHour: 30, bursts: 4, burstSize: 20, minSec: 150, maxSec: 300, rtf: 0.72, overheadSec: 5 };
    expect(dayOfArrivals(o)).toEqual(dayOfArrivals(o));
    const n = dayOfArrivals(o).length;
    expect(n).toBeGreaterThan(8 * 30 * 0.8 + 80);
    expect(n).toBeLessThan(8 * 30 * 1.2 + 80);
  });
});
