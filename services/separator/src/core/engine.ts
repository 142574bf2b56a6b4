/**
 * One model run on one segment: Demucs's spectrogram of the mix, the ONNX graph, then the inverse
 * spectrogram of its frequency branch added to its time branch.
 */
import { BINS, FRAMES, SEGMENT, Stft } from '@stemflow/models/shape';
import { HTDEMUCS, type Quality, type ort } from '@stemflow/models';
import { inProcessRunner, type ModelOutputs, type ModelRunner } from './runner.js';
import { modelRunDuration } from '@stemflow/telemetry';
import { setImmediate as turn } from 'node:timers/promises';

export const STEMS = HTDEMUCS.stems.length; // 4
export const CH = HTDEMUCS.channels;
/** Planar model output: [stem][channel][SEGMENT]. */
export type SegmentOut = Float32Array;

export type Prepared = { mix: Float32Array; spec: Float32Array };

/**
 * Frames of the STFT done between two turns of the event loop: the host DSP of a segment (about
 * 1,000 FFTs) runs on the main thread beside the model's worker, and sliced this fine no slice
 * holds the loop for more than a few milliseconds, even on a machine whose cores the model takes.
 */
const FRAMES_PER_SLICE = 16;

export class HtdemucsEngine {
  readonly runner: ModelRunner;
  /** Time spent inside session.run over the engine's life (a job's share: the difference). */
  runMs = 0;
  runs = 0;

  /**
   * On a runner (services: a worker thread), or on a session run in this thread (tests). `metered`
   * false: its runs are not model runs to the metrics (a warm-up's).
   */
  constructor(model: ModelRunner | ort.InferenceSession, device: 'cpu' | 'cuda' = 'cpu', private readonly metered = true) {
    this.runner = 'run' in model && 'close' in model && !('inputNames' in model) ? model : inProcessRunner(model as ort.InferenceSession, device);
  }

  get device(): 'cpu' | 'cuda' {
    return this.runner.device;
  }

  /** Model runs a pass keeps asked at once on this engine's runner (a pool's sessions, and one waiting). */
  get lanes(): number {
    return this.runner.lanes ?? 1;
  }

  /** Withdraws the runs asked and not started (they fail with RunWithdrawn). */
  withdraw(): void {
    this.runner.withdraw?.();
  }

  /** Host-side input: the segment (planar stereo) and its complex-as-channels spectrogram. */
  async prepare(segment: Float32Array): Promise<Prepared> {
    const stft = await Stft.shared(); // the thread's transforms, shared by every engine
    const spec = new Float32Array(CH * 2 * BINS * FRAMES);
    for (let c = 0; c < CH; c++) {
      for (let t = 0; t < FRAMES; t += FRAMES_PER_SLICE) {
        stft.spec(segment, c * SEGMENT, 1, SEGMENT, spec, 2 * c, 2 * c + 1, t, t + FRAMES_PER_SLICE);
        await turn();
      }
    }
    return { mix: segment, spec };
  }

  /** One model run; the prepared inputs are consumed (moved to the model's thread). */
  async infer(p: Prepared): Promise<ModelOutputs> {
    const { freq, time, ms } = await this.runner.run(p.mix, p.spec);
    this.runMs += ms;
    if (this.metered) modelRunDuration.observe({ device: this.device }, ms / 1000);
    this.runs++;
    return { freq, time };
  }

  /** Runs the next chunks on this quality's graph (an engine on one session has no choice, and keeps it). */
  async select(quality: Quality): Promise<void> {
    await this.runner.select?.(quality);
  }

  close(): Promise<void> {
    return this.runner.close();
  }

  /**
   * Frequency branch through the inverse spectrogram, plus the time branch: [stem][ch][SEGMENT].
   * The outputs are used up: the result is the time branch's memory, the inverse added into it.
   */
  async finish(o: ModelOutputs): Promise<SegmentOut> {
    const stft = await Stft.shared(); // the thread's transforms, shared by every engine
    // The time branch is [1, S, C, SEGMENT], the output's layout.
    const out = o.time;
    const plane = BINS * FRAMES;
    for (let s = 0; s < STEMS; s++) {
      // freq is [1, S, C*2, F, T]: planes (re0, im0, re1, im1) of stem s start at s*4.
      const z = o.freq.subarray(s * 4 * plane, (s + 1) * 4 * plane);
      const left = out.subarray(s * CH * SEGMENT, (s * CH + 1) * SEGMENT);
      const right = out.subarray((s * CH + 1) * SEGMENT, (s * CH + 2) * SEGMENT);
      for (let t = 0; t < FRAMES; t += FRAMES_PER_SLICE) {
        stft.ispec2(z, { re: 0, im: 1 }, { re: 2, im: 3 }, SEGMENT, left, right, t, t + FRAMES_PER_SLICE);
        await turn();
      }
    }
    return out;
  }
}
