/**
 * Storing a job's input: streamed into the BlobStore while it is hashed, counted and typed by its
 * content (the decoder's allowlist, so a refused file is refused before any job exists). An input
 * that is too large, not audio, or cut off leaves no object behind. The HTTP upload and the CLI
 * store through it; the decoder's imports store the same way.
 */
import { objectKeys } from '@stemflow/contracts';
import type { Readable } from 'node:stream';
import { AUDIO_SNIFFER } from '@stemflow/audio';
import { safeFileName, storeChecked, type BlobStore } from '@stemflow/storage';

export type StoredUpload = { key: string; size: number; sha256: string; contentType: string; filename: string };

/** Streams one input into the store at `jobs/{id}/input/source`. Too large, not audio, aborted (signal) or a failed write: rejects, and no object is left. */
export async function storeInput(
  blobs: BlobStore,
  jobId: string,
  originalName: string | undefined,
  source: Readable,
  o: { maxBytes: number; signal?: AbortSignal },
): Promise<StoredUpload> {
  const stored = await storeChecked(blobs, objectKeys.input(jobId), source, { maxBytes: o.maxBytes, signal: o.signal, sniff: AUDIO_SNIFFER });
  return { ...stored, filename: safeFileName(originalName) };
}
