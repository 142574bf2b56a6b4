/**
 * One model run on one segment: Demucs's spectrogram of the mix, the ONNX graph, then the inverse
 * spectrogram of its frequency branch added to its time branch.
 */
import { BINS, FRAMES, SEGMENT, Stft } from '@stemflow/audio';
import { HTDEMUCS, ort } from '@stemflow/models';
import { modelRunDuration } from '@stemflow/telemetry';

export const STEMS = HTDEMUCS.stems.length; // 4
export const CH = 2;
/** Planar model output: [stem][channel][SEGMENT]. */
export type SegmentOut = Float32Array;

export type Prepared = { mix: ort.Tensor; spec: ort.Tensor };

export class HtdemucsEngine {
  private readonly stft = new Stft();
  private readonly mixName: string;
  private readonly specName: string;
  /** Time spent inside session.run, for the benchmark's ratio. */
  runMs = 0;
  runs = 0;

  constructor(
    readonly session: ort.InferenceSession,
    readonly device: 'cpu' | 'cuda' = 'cpu',
  ) {
    // Inputs are told apart by rank: the mix is [1,2,T], the spectrogram [1,4,F,T].
    const meta = session.inputMetadata as unknown as { name: string; shape?: unknown[] }[] | undefined;
    const byRank = (rank: number) => meta?.find((m) => Array.isArray(m.shape) && m.shape.length === rank)?.name;
    this.mixName = byRank(3) ?? session.inputNames[0]!;
    this.specName = byRank(4) ?? session.inputNames[1]!;
  }

  /** Host-side input: the segment (planar stereo) and its complex-as-channels spectrogram. */
  prepare(segment: Float32Array): Prepared {
    const spec = new Float32Array(CH * 2 * BINS * FRAMES);
    for (let c = 0; c < CH; c++) this.stft.spec(segment, c * SEGMENT, 1, SEGMENT, spec, 2 * c, 2 * c + 1);
    return { mix: new ort.Tensor('float32', segment, [1, CH, SEGMENT]), spec: new ort.Tensor('float32', spec, [1, CH * 2, BINS, FRAMES]) };
  }

  async infer(p: Prepared): Promise<{ freq: Float32Array; time: Float32Array }> {
    const t0 = performance.now();
    const out = await this.session.run({ [this.mixName]: p.mix, [this.specName]: p.spec });
    const ms = performance.now() - t0;
    this.runMs += ms;
    modelRunDuration.observe({ device: this.device }, ms / 1000);
    this.runs++;
    let freq: Float32Array | undefined;
    let time: Float32Array | undefined;
    for (const t of Object.values(out)) {
      if (t.dims.length === 5) freq = t.data as Float32Array;
      else if (t.dims.length === 4) time = t.data as Float32Array;
    }
    if (!freq || !time) throw new Error('unexpected model outputs');
    return { freq, time };
  }

  /** Frequency branch through the inverse spectrogram, plus the time branch: [stem][ch][SEGMENT]. */
  finish(o: { freq: Float32Array; time: Float32Array }): SegmentOut {
    const a = new Float64Array(SEGMENT);
    const b = new Float64Array(SEGMENT);
    const out = new Float32Array(STEMS * CH * SEGMENT);
    const plane = BINS * FRAMES;
    for (let s = 0; s < STEMS; s++) {
      a.fill(0);
      b.fill(0);
      // freq is [1, S, C*2, F, T]: planes (re0, im0, re1, im1) of stem s start at s*4.
      const z = o.freq.subarray(s * 4 * plane, (s + 1) * 4 * plane);
      this.stft.ispec2(z, { re: 0, im: 1 }, { re: 2, im: 3 }, SEGMENT, a, b);
      const t0 = (s * CH) * SEGMENT;
      const t1 = (s * CH + 1) * SEGMENT;
      for (let i = 0; i < SEGMENT; i++) {
        out[t0 + i] = o.time[t0 + i]! + a[i]!;
        out[t1 + i] = o.time[t1 + i]! + b[i]!;
      }
    }
    return out;
  }
}
