/**
 * The model's worker takes a run while it computes another: the run waits in the worker's thread
 * and starts as the first returns (no round trip through the main thread between them), and one
 * withdrawn before its turn — its job canceled — is answered RunWithdrawn instead of being computed.
 * The outputs are written into memory the main thread shares with the worker: a caller's until it
 * releases them, then reused. One session of the fast graph.
 */
import { BINS, FRAMES, SEGMENT } from '@stemflow/models/shape';
import { HtdemucsEngine, RunWithdrawn, workerRunner } from '@stemflow/separator/core';
import { expect, it } from 'vitest';

it('runs queued in the model worker: served in order, a withdrawn one not computed, the worker serving on', async () => {
  const runner = await workerRunner({ device: 'cpu', threads: 0, memArena: false, quality: 'fast' });
  const engine = new HtdemucsEngine(runner);
  try {
    const inputs = async (k: number) => {
      const seg = new Float32Array(2 * SEGMENT);
      for (let i = 0; i < seg.length; i++) seg[i] = 0.1 * Math.sin(i * 0.01 * (k + 1));
      return engine.prepare(seg);
    };
    const [a, b, c, d] = await Promise.all([0, 1, 2, 0].map(inputs)); // d: a's inputs again
    const cancel = new AbortController();
    const order: string[] = [];
    const first = runner.run(a!.mix, a!.spec).then((o) => (order.push('first'), o));
    const second = runner.run(b!.mix, b!.spec).then((o) => (order.push('second'), o));
    const third = runner.run(c!.mix, c!.spec, cancel.signal).then((o) => (order.push('third'), o), (e: unknown) => (order.push('third withdrawn'), e));
    cancel.abort(); // while the first computes: the third has not started
    const outs = await Promise.all([first, second]);
    expect(await third).toBeInstanceOf(RunWithdrawn);
    expect(order).toEqual(['first', 'second', 'third withdrawn']);
    for (const o of outs) {
      expect(o.freq.length).toBe(4 * 4 * BINS * FRAMES);
      expect(o.time.length).toBe(4 * 2 * SEGMENT);
      expect(o.ms).toBeGreaterThan(0);
    }
    // Outputs held are the caller's: each run wrote its own memory.
    const [one, two] = outs;
    expect(two!.time.buffer).not.toBe(one!.time.buffer);
    const firstTime = one!.time.slice();
    const firstFreq = one!.freq.slice();
    const secondTime = two!.time.slice();
    // Released, the first's memory serves the next run (the withdrawal left the worker serving):
    // a's inputs again, a's outputs again, and the second's, still held, untouched.
    one!.release!();
    const again = await runner.run(d!.mix, d!.spec);
    expect(again.time.buffer).toBe(one!.time.buffer);
    const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
    expect(maxDiff(again.time, firstTime)).toBeLessThan(1e-4);
    expect(maxDiff(again.freq, firstFreq)).toBeLessThan(1e-4);
    expect(maxDiff(two!.time, secondTime)).toBe(0);
    expect(maxDiff(firstTime, secondTime)).toBeGreaterThan(1e-3); // different songs, different stems
    expect(runner.dead).toBeUndefined();
  } finally {
    await engine.close();
  }
});
