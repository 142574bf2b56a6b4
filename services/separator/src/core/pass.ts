/**
 * One pass of chunked separation with overlap-add (apply.py `apply_model` with split), streaming:
 * chunk inputs are read by range, each chunk's finished output region is handed on (and
 * checkpointed) as soon as no later chunk can touch it, so memory does not grow with the track.
 * Reading and the STFT of the next chunk and the iSTFT of the last one run while the model computes;
 * an engine whose runner has several sessions (a ModelPool) computes that many chunks at once.
 */
import { setImmediate as turn } from 'node:timers/promises';
import { SEGMENT } from '@stemflow/models/shape';
import { CH, HtdemucsEngine, STEMS } from './engine.js';
import { RunWithdrawn } from './runner.js';
import { planChunks, triangle, type Chunk } from './plan.js';

export const PLANES = STEMS * CH; // 8 planar output channels

/** Normalized planar stereo of track samples [start, start+len), zeros outside the track. */
export type MixReader = (start: number, len: number) => Promise<Float32Array>;

/**
 * A pass separates a view of the track: view position v is track position v + viewOffset. What
 * it hands on is clipped to track positions [trackStart (default 0), trackLength).
 */
export type PassView = { viewOffset: number; viewLength: number; trackLength: number; trackStart?: number };

/** State after chunk k: what is still being summed, from view position `base`. */
export type Carry = { base: number; rem: Float32Array; wsum: Float32Array };
/** Output [stem][ch][length] for track positions [start, start+length). */
export type Region = { start: number; length: number; data: Float32Array };

export type PassHooks = {
  /** After chunk k: its finished region (possibly empty) and the carry to resume from. */
  onChunk: (k: number, region: Region, carry: Carry) => Promise<void>;
  /**
   * Asked before each chunk. true stops the pass once the runs already started have returned and
   * been handed on (a hand-back: nothing computed is lost); 'now' stops it at once, their outputs
   * unwanted (the job was canceled or deleted).
   */
  shouldStop?: () => Promise<boolean | 'now'>;
};

const weight = triangle();

export async function runPass(engine: HtdemucsEngine, read: MixReader, view: PassView, plan: Chunk[], hooks: PassHooks, resume?: { after: number; carry: Carry }): Promise<'done' | 'stopped'> {
  const cap = 2 * SEGMENT;
  const acc = new Float32Array(PLANES * cap);
  const wsum = new Float32Array(cap);
  let base = 0;
  if (resume) {
    base = resume.carry.base;
    const r = resume.carry.wsum.length;
    for (let p = 0; p < PLANES; p++) acc.set(resume.carry.rem.subarray(p * r, (p + 1) * r), p * cap);
    wsum.set(resume.carry.wsum);
  }
  const first = resume ? resume.after + 1 : 0;

  /**
   * Reads and transforms the next chunk while the model runs. The promise is awaited a step
   * later: it is marked handled now, or a read failing meanwhile (the store down) would be an
   * unhandled rejection that kills the process instead of failing the attempt.
   */
  const prepare = (c: Chunk) => {
    const p = (async () => {
      const pad = Math.floor((SEGMENT - c.length) / 2);
      const seg = await read(c.offset - pad + view.viewOffset, SEGMENT);
      return engine.prepare(seg);
    })();
    p.catch(() => {});
    return p;
  };

  /** Samples per plane from the front of `acc` that may be nonzero: the carry, then a chunk's reach. */
  let used = resume ? resume.carry.wsum.length : 0;
  /**
   * Adds a chunk's output into the sum and hands on what no later chunk touches, in one pass over
   * each plane: the finished region is divided by the weights as it is summed (never stored in
   * `acc`), the part a later chunk overlaps is summed in place and shifted to the front. Each
   * sample is rounded where the sum's float32 storage rounded it, so the output is bit for bit
   * that of summing the chunk in, then dividing.
   */
  const post = async (c: Chunk, out: Float32Array) => {
    const trim = Math.floor((SEGMENT - c.length) / 2);
    const at = c.offset - base; // the chunk covers acc [at, reach)
    const reach = at + c.length;
    for (let i = 0; i < c.length; i++) wsum[at + i]! += weight[i]!;
    // Everything before the next chunk's start is final.
    const next = plan[c.index + 1];
    const end = next ? next.offset : view.viewLength;
    const n = end - base;
    const remLen = Math.max(0, reach - n);
    // Clip the finished view region to the track.
    const t0 = Math.max(view.trackStart ?? 0, base + view.viewOffset);
    const t1 = Math.min(view.trackLength, end + view.viewOffset);
    const len = Math.max(0, t1 - t0);
    const skip = t0 - (base + view.viewOffset);
    // The finished region [skip, skip + len) in three parts: before the chunk, under it, after it.
    const under0 = Math.min(Math.max(at, skip), skip + len);
    const under1 = Math.max(Math.min(reach, skip + len), under0);
    const data = new Float32Array(PLANES * len);
    const rem = new Float32Array(PLANES * remLen);
    // A plane at a time, with a turn of the event loop between: a whole chunk's overlap-add in one
    // go held the loop for 20-70 ms.
    for (let p = 0; p < PLANES; p++) {
      const a = p * cap;
      const o = p * SEGMENT + trim - at; // out[o + i] is the chunk's sample at acc[a + i]
      const d = p * len - skip; // data[d + i] is acc[a + i] finished
      for (let i = skip; i < under0; i++) data[d + i] = acc[a + i]! / wsum[i]!;
      for (let i = under0; i < under1; i++) data[d + i] = Math.fround(acc[a + i]! + out[o + i]! * weight[i - at]!) / wsum[i]!;
      for (let i = under1; i < skip + len; i++) data[d + i] = acc[a + i]! / wsum[i]!;
      // What a later chunk overlaps: summed, moved to the front, and zeros behind it (after the
      // plan's last chunk, nothing is summed again).
      if (next) {
        for (let i = n; i < reach; i++) acc[a + i]! += out[o + i]! * weight[i - at]!;
        acc.copyWithin(a, a + n, a + reach);
        acc.fill(0, a + remLen, a + Math.max(used, reach));
        rem.set(acc.subarray(a, a + remLen), p * remLen);
      }
      await turn();
    }
    used = remLen;
    const remW = wsum.slice(n, n + remLen);
    if (next) {
      wsum.fill(0);
      wsum.set(remW);
    }
    base = end;
    await hooks.onChunk(c.index, { start: t0, length: len, data }, { base, rem, wsum: remW });
  };

  if (first >= plan.length) return 'done';
  // Chunks in flight, oldest first: as many as the engine's runner takes asked at once (its pool's
  // sessions and one waiting), each posted in order (the carry is sequential), the next launched
  // as soon as a run returns — before that run's iSTFT, which the main thread does while the model
  // computes. Stopped, the runs not yet started are withdrawn, and those started are posted as they
  // return (or, stopped 'now', left to finish unread).
  const lanes = Math.max(1, engine.lanes);
  const inFlight: { c: Chunk; out: ReturnType<HtdemucsEngine['infer']> }[] = [];
  let next = first;
  let nextPrep: ReturnType<HtdemucsEngine['prepare']> | undefined = prepare(plan[first]!);
  let stopped = false;
  let dropped = false;
  /**
   * Launches chunks while lanes are free, asking before each whether to stop; once the whole plan
   * is launched, asks as each run returns whether to stop now (a hand-back then would only delay
   * the end of a job whose runs are all started).
   */
  const fill = async () => {
    while (!stopped) {
      const launch = next < plan.length && inFlight.length < lanes;
      if (!launch && next < plan.length) return; // every lane busy
      const stop = hooks.shouldStop && (await hooks.shouldStop());
      if (stop && (launch || stop === 'now')) {
        stopped = true;
        engine.withdraw();
        dropped = stop === 'now';
        return;
      }
      if (!launch) return; // the plan is all launched: the runs in flight are its end
      const inputs = await nextPrep!;
      const out = engine.infer(inputs);
      out.catch(() => {}); // awaited in order below, unless an earlier chunk throws first
      inFlight.push({ c: plan[next]!, out });
      next++;
      nextPrep = next < plan.length ? prepare(plan[next]!) : undefined;
    }
  };
  await fill();
  while (inFlight.length && !dropped) {
    const head = inFlight.shift()!;
    const out = await head.out.catch((err: unknown) => {
      if (!(err instanceof RunWithdrawn)) throw err;
      // Withdrawn (the job's end was seen): this chunk and the later ones never ran.
      stopped = true;
      dropped = true;
      return undefined;
    });
    if (!out) break;
    await fill();
    if (dropped) break;
    await post(head.c, await engine.finish(out));
  }
  // A run launched while its withdrawal was under way (its inputs were being prepared) waits no more.
  if (stopped) engine.withdraw();
  return stopped ? 'stopped' : 'done';
}

/**
 * Takes this thread through a short pass on silence, a model answering zeros in place of the
 * graph: the DSP's WebAssembly compiled, the transforms' and the overlap-add's loops optimized and
 * the memory a pass's buffers take mapped, before a job's first pass waits on them. Cold, that
 * pass's first STFT took 2-4× as long, and its last chunk's inverse and overlap-add 1.5-3× (the
 * end of a lone job, which nothing overlaps). A separator does it while its models load in the
 * workers.
 */
export async function warmUp(): Promise<void> {
  const zeros = async (_mix: Float32Array, spec: Float32Array) => ({ freq: new Float32Array(STEMS * spec.length), time: new Float32Array(STEMS * CH * SEGMENT), ms: 0 });
  const engine = new HtdemucsEngine({ device: 'cpu', run: zeros, close: async () => {} }, 'cpu', false);
  // Three chunks, the last a whole segment past the one before: the shapes of a song's end.
  const length = 2 * SEGMENT;
  await runPass(engine, async (_start, len) => new Float32Array(CH * len), { viewOffset: 0, viewLength: length, trackLength: length }, planChunks(length, 0.25), { onChunk: async () => {} });
}
