/**
 * The model's worker takes a run while it computes another: the run waits in the worker's thread
 * and starts as the first returns (no round trip through the main thread between them), and one
 * withdrawn before its turn — its job canceled — is answered RunWithdrawn instead of being computed.
 * One session of the fast graph.
 */
import { BINS, FRAMES, SEGMENT } from '@stemflow/models/shape';
import { HtdemucsEngine, RunWithdrawn, workerRunner } from '@stemflow/separator/core';
import { expect, it } from 'vitest';

it('runs queued in the model worker: served in order, a withdrawn one not computed, the worker serving on', async () => {
  const runner = await workerRunner({ device: 'cpu', threads: 0, memArena: false, quality: 'fast' });
  const engine = new HtdemucsEngine(runner);
  try {
    // The model's thread flushes denormals to zero (a run 1.3-1.5× faster; models/src/denormals.ts).
    expect(runner.flushesDenormals).toBe(process.platform === 'linux' && ['x64', 'arm64'].includes(process.arch));
    const inputs = async (k: number) => {
      const seg = new Float32Array(2 * SEGMENT);
      for (let i = 0; i < seg.length; i++) seg[i] = 0.1 * Math.sin(i * 0.01 * (k + 1));
      return engine.prepare(seg);
    };
    const [a, b, c, d] = await Promise.all([0, 1, 2, 3].map(inputs));
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
    // The withdrawal left the worker serving: the next run is computed.
    expect((await runner.run(d!.mix, d!.spec)).time.length).toBe(4 * 2 * SEGMENT);
    expect(runner.dead).toBeUndefined();
  } finally {
    await engine.close();
  }
});
