import { describe, expect, it } from 'vitest';
import { SEGMENT, Stft } from '@stemflow/models/shape';
import { HtdemucsEngine } from './engine.js';

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
});
