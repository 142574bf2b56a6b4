import { describe, expect, it } from 'vitest';
import { SEGMENT, Stft } from '@stemflow/models/shape';
import { modelRunDuration } from '@stemflow/telemetry';
import { HtdemucsEngine } from './engine.js';
import { warmUp } from './pass.js';

/** The model runs the metrics have counted on this process's CPU. */
const runsCounted = async () => (await modelRunDuration.get()).values.find((v) => v.metricName === 'stemflow_model_run_seconds_count' && v.labels.device === 'cpu')?.value ?? 0;

describe("a job's engine", () => {
  it("shares the thread's transforms: engines made one per job do not grow the WebAssembly memory", async () => {
    const runner = { device: 'cpu' as const, run: async () => Promise.reject(new Error('no model here')), close: async () => {} };
    const job = async () => {
      const engine = new HtdemucsEngine(runner);
      const { spec } = await engine.prepare(new Float32Array(2 * SEGMENT).map((_, i) => Math.sin(i * 0.01)));
      await engine.close();
      return spec;
    };
    const first = await job();
    const before = await Stft.memoryBytes();
    const same = (a: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(first.buffer));
    for (let i = 0; i < 50; i++) expect(same(await job())).toBe(true);
    // A separator makes an engine per job: 0.8 MiB of buffers each would grow it by 40 MiB here.
    expect(await Stft.memoryBytes()).toBe(before);
  });

  it('warms up on a whole pass without a model, and its runs are not model runs to the metrics', async () => {
    const counted = await runsCounted();
    await warmUp();
    expect(await runsCounted()).toBe(counted);
    // A metered engine's runs are counted: the count above could have moved.
    const engine = new HtdemucsEngine({ device: 'cpu', run: async (_mix: Float32Array, spec: Float32Array) => ({ freq: new Float32Array(4 * spec.length), time: new Float32Array(8 * SEGMENT), ms: 1 }), close: async () => {} });
    await engine.infer(await engine.prepare(new Float32Array(2 * SEGMENT)));
    expect(await runsCounted()).toBe(counted + 1);
  });
});
