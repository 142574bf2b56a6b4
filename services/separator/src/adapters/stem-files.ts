/**
 * Where a stem's bytes go as they are made: a local file (uploaded whole when the job ends) and,
 * for a stem that can be heard while the job runs, pieces in the store that the gateway streams
 * from. A piece is named by its offset in the file, so the file is the pieces in order; a job
 * resumed elsewhere makes the same bytes again and stores only what is not there yet.
 */
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHANNELS, CODEC_ARGS, FORMAT_CONTENT_TYPE, MP3_STREAM_RATES, WAV_BYTES, id3Length, isWav, mp3InfoFrame, quantize, run, startEncoder, startPipeEncoder, wavBytes, wavHeader, type WavFormat } from '@stemflow/audio';
import { StemflowError, type AudioFormat, objectKeys, type LiveManifest } from '@stemflow/contracts';
import { writeLiveManifest, type BlobStore } from '@stemflow/storage';

/** A stem's bytes: appended to its file; with `live`, also stored in pieces as they come. */
export class StemBytes {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes made so far. */
  made = 0;
  /** Bytes an earlier attempt had stored when this one started. */
  readonly storedBefore: number;

  private constructor(
    private readonly fh: FileHandle,
    private readonly live: { blobs: BlobStore; jobId: string; stem: string; stored: number } | undefined,
  ) {
    this.storedBefore = live?.stored ?? 0;
  }

  /** Opens the file; for a live stem, finds what an earlier attempt stored (contiguous pieces). */
  static async open(file: string, live?: { blobs: BlobStore; jobId: string; stem: string; manifest: LiveManifest }): Promise<StemBytes> {
    const fh = await open(file, 'w');
    if (!live) return new StemBytes(fh, undefined);
    const parts = await live.blobs.list(objectKeys.liveStem(live.jobId, live.stem));
    let stored = 0;
    for (const p of parts) {
      if (objectKeys.livePartOffset(p.key) !== stored) {
        // A gap (never written so, pieces go in order): this stem's pieces start again.
        await live.blobs.deletePrefix(objectKeys.liveStem(live.jobId, live.stem));
        stored = 0;
        break;
      }
      stored += p.size;
    }
    await writeLiveManifest(live.blobs, live.jobId, live.stem, live.manifest);
    return new StemBytes(fh, { blobs: live.blobs, jobId: live.jobId, stem: live.stem, stored });
  }

  async push(b: Buffer): Promise<void> {
    if (!b.length) return;
    await this.fh.write(b);
    const from = this.made;
    this.made += b.length;
    // Bytes an earlier attempt already stored are not stored again.
    if (this.live && this.made > this.live.stored) {
      const part = from >= this.live.stored ? b : b.subarray(this.live.stored - from);
      this.pending.push(Buffer.from(part));
      this.pendingBytes += part.length;
    }
  }

  /** Stores what came since the last piece as the next piece. */
  async flush(): Promise<void> {
    if (!this.live || !this.pendingBytes) return;
    const body = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.live.blobs.put(objectKeys.livePart(this.live.jobId, this.live.stem, this.live.stored), body, { contentType: 'application/octet-stream' });
    this.live.stored += body.length;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** One stem's encoder: interleaved stereo float in; bytes to its StemBytes (or, for MP3, its file). */
export type StemSink = {
  write(interleaved: Float32Array, n: number): Promise<void>;
  /** Frames whose bytes are out of the encoder (a WAV's at once; a FLAC's up to a block behind). */
  framesOut(): number;
  finish(): Promise<void>;
  /** Ends its encoder, if any, and resolves once that process is gone. */
  kill(): Promise<void>;
};

export function liveManifest(format: AudioFormat, sampleRate: number, frames: number): LiveManifest {
  return { format, contentType: FORMAT_CONTENT_TYPE[format], sampleRate, frames, bytes: isWav(format) ? wavBytes(format, frames) : null };
}

/** Whether a stem of this format and rate can be written as a stream (MP3 only at the MPEG-1 rates, where its gapless header can be made first). */
export const streamable = (format: AudioFormat, sampleRate: number) => format !== 'mp3' || MP3_STREAM_RATES.includes(sampleRate);

export async function openSink(format: AudioFormat, sampleRate: number, frames: number, bytes: StemBytes | undefined, file: string, label: string): Promise<StemSink> {
  if (isWav(format)) return wavSink(format, sampleRate, frames, bytes!);
  if (bytes && format === 'flac') return pipeSink(format, sampleRate, bytes, label, 4608, patchFlacLength(frames));
  if (bytes) return pipeSink('mp3', sampleRate, bytes, label, 1152 + 1105, await mp3Header(sampleRate, frames));
  // Not streamed: ffmpeg writes its own file (and goes back to its start for what it knows at the end).
  const enc = startEncoder(format, sampleRate, file, label);
  let n = 0;
  return {
    write: async (x, count) => {
      await enc.write(Buffer.from(x.buffer, x.byteOffset, 8 * count));
      n += count;
    },
    framesOut: () => n,
    finish: () => enc.finish(),
    kill: () => enc.kill(),
  };
}

async function wavSink(format: WavFormat, sampleRate: number, frames: number, bytes: StemBytes): Promise<StemSink> {
  await bytes.push(wavHeader(format, sampleRate, frames));
  let scratch: Buffer = Buffer.alloc(0);
  let n = 0;
  return {
    write: async (x, count) => {
      scratch = quantize(format, x, CHANNELS * count, scratch);
      await bytes.push(Buffer.from(scratch.subarray(0, CHANNELS * count * WAV_BYTES[format])));
      n += count;
    },
    framesOut: () => n,
    finish: async () => {},
    kill: async () => {},
  };
}

/** The first bytes of an encoder's output, changed before they go on; `need` bytes are held until it can say. */
type HeadPatch = { need: (head: Buffer) => number | undefined; patch: (head: Buffer) => Buffer };

/** FLAC's STREAMINFO gets the total length (36 bits from byte 18), known before the first sample. */
const patchFlacLength = (frames: number): HeadPatch => ({
  need: () => 26,
  patch: (head) => {
    const v = head.readBigUInt64BE(18);
    head.writeBigUInt64BE((v & ~0xfffffffffn) | BigInt(frames), 18);
    return head;
  },
});

/** Each MP3 rate's Info frame as ffmpeg writes it (for any length): the template the stream's own is made from. */
const mp3Templates = new Map<number, Promise<Buffer>>();
function mp3Template(sampleRate: number): Promise<Buffer> {
  let t = mp3Templates.get(sampleRate);
  if (!t) {
    t = (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'stemflow-mp3-'));
      try {
        const file = join(dir, 'a.mp3');
        const r = await run('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `anullsrc=r=${sampleRate}:cl=stereo`, '-t', '0.2', ...CODEC_ARGS.mp3, '-y', file], 30_000);
        if (r.code !== 0) throw new StemflowError('ENCODE_FAILED', `ffmpeg could not write MP3 at ${sampleRate} Hz: ${r.stderr.trim().split('\n').pop() ?? ''}`, { retryable: true });
        const b = await readFile(file);
        const at = id3Length(b) ?? 0;
        // MPEG-1 layer III at 320 kb/s: 144 × bitrate ÷ rate bytes, one more when the padding bit is set.
        const len = Math.floor((144 * MP3_KBPS * 1000) / sampleRate) + ((b[at + 2]! >> 1) & 1);
        return b.subarray(at, at + len);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    })();
    t.catch(() => mp3Templates.delete(sampleRate));
    mp3Templates.set(sampleRate, t);
  }
  return t;
}

/** The Info frame goes right after the ID3 tag the encoder writes first. */
async function mp3Header(sampleRate: number, frames: number): Promise<HeadPatch> {
  const info = mp3InfoFrame(await mp3Template(sampleRate), sampleRate, MP3_KBPS, frames);
  return {
    need: (head) => id3Length(head),
    patch: (head) => {
      const id3 = id3Length(head)!;
      return Buffer.concat([head.subarray(0, id3), info, head.subarray(id3)]);
    },
  };
}
const MP3_KBPS = Number(/^(\d+)k$/.exec(CODEC_ARGS.mp3[CODEC_ARGS.mp3.indexOf('-b:a') + 1]!)![1]);

/** An encoder writing to a pipe, its output in order to the stem's bytes, the head patched first. `lag`: frames the encoder holds before it writes them. */
function pipeSink(format: 'flac' | 'mp3', sampleRate: number, bytes: StemBytes, label: string, lag: number, head: HeadPatch): StemSink {
  const enc = startPipeEncoder(format, sampleRate, label);
  let n = 0;
  const drained = (async () => {
    let held: Buffer | undefined = Buffer.alloc(0);
    for await (const c of enc.stdout as AsyncIterable<Buffer>) {
      if (held) {
        held = Buffer.concat([held, c]);
        const need = head.need(held);
        if (need === undefined || held.length < need) continue;
        await bytes.push(head.patch(held));
        held = undefined;
      } else await bytes.push(c);
    }
    if (held?.length) await bytes.push(head.patch(held));
  })();
  drained.catch(() => {});
  return {
    write: async (x, count) => {
      await enc.write(Buffer.from(x.buffer, x.byteOffset, 8 * count));
      n += count;
    },
    framesOut: () => Math.max(0, n - lag),
    finish: async () => {
      await enc.finish();
      await drained;
    },
    kill: () => enc.kill(),
  };
}
