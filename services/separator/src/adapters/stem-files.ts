/**
 * Where a stem's bytes go as they are made: a local file (uploaded whole when the job ends) and,
 * for a stem that can be heard while the job runs, pieces in the store that the gateway streams
 * from. A piece is named by its offset in the file, so the file is the pieces in order; a job
 * resumed elsewhere makes the same bytes again and stores only what is not there yet.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import { CHANNELS, FORMAT_CONTENT_TYPE, isWav, quantize, startEncoder, wavBytes, wavHeader, type WavFormat } from '@stemflow/audio';
import { StemflowError, type AudioFormat } from '@stemflow/contracts';
import { keys, type BlobStore, type LiveManifest } from '@stemflow/storage';


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
    const parts = (await live.blobs.list(keys.liveStem(live.jobId, live.stem))).sort((a, b) => a.key.localeCompare(b.key));
    const offsetOf = (key: string) => Number(key.slice(key.lastIndexOf('/') + 1));
    let stored = 0;
    for (const p of parts) {
      if (offsetOf(p.key) !== stored) {
        // A gap (never written so, pieces go in order): this stem's pieces start again.
        await live.blobs.deletePrefix(keys.liveStem(live.jobId, live.stem));
        stored = 0;
        break;
      }
      stored += p.size;
    }
    await live.blobs.put(keys.liveManifest(live.jobId, live.stem), Buffer.from(JSON.stringify(live.manifest)), { contentType: 'application/json' });
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
    await this.live.blobs.put(keys.livePart(this.live.jobId, this.live.stem, this.live.stored), body, { contentType: 'application/octet-stream' });
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
  kill(): void;
};

export function liveManifest(format: AudioFormat, sampleRate: number, frames: number): LiveManifest {
  return { format, contentType: FORMAT_CONTENT_TYPE[format], sampleRate, frames, bytes: isWav(format) ? wavBytes(format, sampleRate, frames) : null };
}

export async function openSink(format: AudioFormat, sampleRate: number, frames: number, bytes: StemBytes | undefined, file: string, label: string): Promise<StemSink> {
  if (isWav(format)) return wavSink(format, sampleRate, frames, bytes!);
  if (format === 'flac') return flacSink(sampleRate, frames, bytes!, label);
  // MP3 is written by ffmpeg into its own file (it goes back to the start to write the gapless header).
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
  let q = new Float32Array(0);
  let n = 0;
  return {
    write: async (x, count) => {
      if (q.length < CHANNELS * count) q = new Float32Array(CHANNELS * count);
      scratch = quantize(format, x, CHANNELS * count, scratch, q);
      await bytes.push(Buffer.from(scratch.subarray(0, CHANNELS * count * (format === 'wav16' ? 2 : format === 'wav24' ? 3 : 4))));
      n += count;
    },
    framesOut: () => n,
    finish: async () => {},
    kill: () => {},
  };
}

/** FLAC through ffmpeg to a pipe; the stream header gets the total length, known before the first sample. */
function flacSink(sampleRate: number, frames: number, bytes: StemBytes, label: string): StemSink {
  const p = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'f32le', '-ar', String(sampleRate), '-ac', String(CHANNELS), '-i', 'pipe:0', '-c:a', 'flac', '-sample_fmt', 's32', '-bits_per_raw_sample', '24', '-flags', '+bitexact', '-fflags', '+bitexact', '-f', 'flac', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
  p.stdin.on('error', () => {});
  let exited = false;
  const closed = new Promise<number | null>((res) => {
    p.on('close', (code) => ((exited = true), res(code)));
    p.on('error', () => ((exited = true), res(-1)));
  });
  let n = 0;
  // Bytes out, in order; the first 26 are held until STREAMINFO's total-samples field can be set.
  const drained = (async () => {
    let head: Buffer | undefined = Buffer.alloc(0);
    for await (const c of p.stdout as AsyncIterable<Buffer>) {
      if (head) {
        head = Buffer.concat([head, c]);
        if (head.length < 26) continue;
        // fLaC, a block header, then STREAMINFO: 20 bits rate, 3 channels, 5 depth, 36 samples from byte 18.
        const v = head.readBigUInt64BE(18);
        head.writeBigUInt64BE((v & ~0xfffffffffn) | BigInt(frames), 18);
        await bytes.push(head);
        head = undefined;
      } else await bytes.push(c);
    }
    if (head) await bytes.push(head);
  })();
  drained.catch(() => {});
  return {
    write: async (x, count) => {
      if (exited) throw new StemflowError('ENCODE_FAILED', `ffmpeg encoding ${label} exited early: ${stderr.trim().split('\n').pop() ?? ''}`, { retryable: true });
      if (!p.stdin.write(Buffer.from(x.buffer, x.byteOffset, 8 * count))) await Promise.race([once(p.stdin, 'drain'), closed]);
      n += count;
    },
    // FLAC holds up to one block (4,608 frames at most here) before it writes it.
    framesOut: () => Math.max(0, n - 4608),
    finish: async () => {
      p.stdin.end();
      const code = await closed;
      await drained;
      if (code !== 0) throw new StemflowError('ENCODE_FAILED', `ffmpeg could not encode ${label}: ${stderr.trim().split('\n').pop() ?? `exit ${code}`}`, { retryable: true });
    },
    kill: () => {
      if (!exited) p.kill('SIGKILL');
    },
  };
}
