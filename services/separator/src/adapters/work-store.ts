/**
 * The separator's side of the object store: the decoded PCM read by ranges (normalized, planar),
 * its statistics, and a job's work area (the plan and the checkpoints of every pass).
 */
import { BYTES_PER_FRAME } from '@stemflow/audio';
import { MonoStats } from '@stemflow/models/shape';
import { StemflowError, objectKeys } from '@stemflow/contracts';
import { readObject, type BlobStore } from '@stemflow/storage';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../core/checkpoint.js';
import type { Carry, MixReader } from '../core/pass.js';
import type { Plan } from '../core/plan.js';


/**
 * Reads planar stereo [start, start+len) of the track from interleaved f32 PCM that holds `frames`
 * frames from track position `from` (a preview's PCM is only the part around its window),
 * normalized, zeros outside.
 */
export function mixReader(blobs: BlobStore, pcmKey: string, frames: number, mean: number, std: number, from = 0): MixReader {
  return async (start: number, len: number): Promise<Float32Array> => {
    const out = new Float32Array(2 * len);
    const a = Math.max(from, start);
    const b = Math.min(from + frames, start + len);
    if (b <= a) return out;
    const raw = await readRange(blobs, pcmKey, (a - from) * BYTES_PER_FRAME, (b - a) * BYTES_PER_FRAME);
    const f = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const inv = 1 / std;
    for (let i = 0; i < b - a; i++) {
      out[a - start + i] = (f[2 * i]! - mean) * inv;
      out[len + a - start + i] = (f[2 * i + 1]! - mean) * inv;
    }
    return out;
  };
}

async function readRange(blobs: BlobStore, key: string, start: number, bytes: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for await (const c of await blobs.get(key, { start, end: start + bytes - 1 })) {
    (c as Buffer).copy(out, at);
    at += (c as Buffer).length;
  }
  if (at !== bytes) throw new StemflowError('PCM_SHORT', `read ${at} of ${bytes} bytes of ${key}`, { retryable: true });
  return out;
}

/** Mean and (unbiased) std of the mono mix, streaming: Demucs's per-track normalization. */
export async function trackStats(blobs: BlobStore, key: string): Promise<{ mean: number; std: number }> {
  const stats = new MonoStats();
  for await (const c of await blobs.get(key)) stats.add(c as Buffer);
  return stats.result();
}

/** One job's work area: its plan and checkpoints, removed when the job ends. */
export class WorkStore {
  constructor(
    private readonly blobs: BlobStore,
    readonly jobId: string,
  ) {}

  async plan(): Promise<Plan | undefined> {
    if (!(await this.blobs.head(objectKeys.plan(this.jobId)))) return undefined;
    return JSON.parse((await readObject(this.blobs, objectKeys.plan(this.jobId))).toString()) as Plan;
  }

  async savePlan(plan: Plan): Promise<void> {
    await this.blobs.put(objectKeys.plan(this.jobId), Buffer.from(JSON.stringify(plan)));
  }

  /** The last checkpoint of a pass, to resume after. */
  async last(pass: number): Promise<Checkpoint | undefined> {
    const have = (await this.blobs.list(objectKeys.pass(this.jobId, pass))).map((b) => b.key).sort();
    return have.length ? decodeCheckpoint(await readObject(this.blobs, have[have.length - 1]!)) : undefined;
  }

  async checkpoint(pass: number, k: number, region: { start: number; length: number; data: Float32Array }, carry: Carry): Promise<void> {
    await this.blobs.put(objectKeys.checkpoint(this.jobId, pass, k), encodeCheckpoint(k, region, carry));
  }

  /** Reads the checkpointed regions of a pass in order (up to chunk `through`), as [plane][n] blocks of the track. */
  async *regions(pass: number, through = Number.POSITIVE_INFINITY): AsyncGenerator<Float32Array> {
    const list = (await this.blobs.list(objectKeys.pass(this.jobId, pass))).filter((b) => objectKeys.checkpointChunk(b.key) <= through);
  // One read buffer per pass, reused: a block is consumed before the next one is read, and a
  // fresh 10 MB buffer per checkpoint left hundreds of MB for the GC to find on long tracks.
  let buf = Buffer.alloc(0);
  for (const { key, size } of list) {
    if (buf.length < size) buf = Buffer.alloc(size);
    let at = 0;
    for await (const c of await this.blobs.get(key)) {
      (c as Buffer).copy(buf, at);
      at += (c as Buffer).length;
    }
    const c = decodeCheckpoint(buf.subarray(0, at));
    if (c.length > 0) yield c.data;
  }
}


  clear(): Promise<number> {
    return this.blobs.deletePrefix(objectKeys.work(this.jobId));
  }
}

/** Reads interleaved stereo f32 PCM from the start, `n` frames at a time (silence past its end). */
export function sequentialPcm(blobs: BlobStore, key: string): { read(n: number): Promise<Float32Array>; close(): void } {
  let it: AsyncIterator<Buffer> | undefined;
  let have: Buffer[] = [];
  let haveBytes = 0;
  let ended = false;
  return {
    async read(n: number) {
      const want = n * BYTES_PER_FRAME;
      it ??= ((await blobs.get(key)) as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      while (haveBytes < want && !ended) {
        const r = await it.next();
        if (r.done) ended = true;
        else {
          have.push(r.value);
          haveBytes += r.value.length;
        }
      }
      const all = have.length === 1 ? have[0]! : Buffer.concat(have, haveBytes);
      const take = Math.min(want, haveBytes - (haveBytes % 4));
      const out = new Float32Array(2 * n);
      out.set(new Float32Array(all.buffer.slice(all.byteOffset, all.byteOffset + take)));
      const rest = all.subarray(take);
      have = rest.length ? [rest] : [];
      haveBytes = rest.length;
      return out;
    },
    close() {
      void it?.return?.();
    },
  };
}
