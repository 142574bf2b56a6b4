/** What both commands share: following a job to its end, and writing its stems to a folder. */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FORMAT_EXT, isFinished, type AudioFormat, type JobStatus } from '@stemflow/contracts';
import type { Progress } from './progress.js';

export type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
type Seen = { status: JobStatus; stage: string | null; progress: number; eta_sec: number | null; error_message: string | null };

/** Polls the job until it ends, drawing progress; resolves with its last state. */
export async function followJob<J extends Seen>(read: () => Promise<J | undefined>, bar: Progress, everyMs = 250): Promise<J> {
  try {
    for (;;) {
      const j = await read();
      if (j) {
        bar.update({ stage: j.stage ?? j.status, progress: j.progress, etaSec: j.eta_sec });
        if (isFinished(j)) return j;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  } finally {
    bar.stop();
  }
}

/** `--out`, or ./separated/<file name without extension>/ as Demucs does. */
export const outDir = (out: string | undefined, input: string) => resolve(out ?? join('separated', basename(input, extname(input))));

/**
 * Writes each stem as <dir>/<stem>.<ext>: to a .part file first, renamed when complete, so an
 * interrupted download never leaves a file that looks finished.
 */
export async function saveStems<S extends { name: string; format: AudioFormat }>(dir: string, stems: S[], open: (s: S) => Promise<Readable>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const s of stems) {
    const file = join(dir, `${s.name}.${FORMAT_EXT[s.format]}`);
    const part = `${file}.part`;
    try {
      await pipeline(await open(s), createWriteStream(part));
      await rename(part, file);
    } catch (err) {
      await rm(part, { force: true });
      throw err;
    }
    files.push(file);
  }
  return files;
}
