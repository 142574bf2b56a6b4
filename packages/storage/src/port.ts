import type { Readable } from 'node:stream';

export type BlobInfo = { key: string; size: number; contentType?: string; /** Last write (list only). */ modified?: Date };
export type PutOptions = { contentType?: string; /** Known length, lets S3 skip multipart for small bodies. */ size?: number };
export type ByteRange = { start: number; /** Inclusive. */ end?: number };

/** The object store: the only place job inputs, PCM and stems live. */
export interface BlobStore {
  /** Writes all of body under key, atomically: a failed or aborted write leaves no object. */
  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<{ bytes: number }>;
  /** Streams an object or a byte range of it; NOT_FOUND if absent. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  head(key: string): Promise<BlobInfo | undefined>;
  list(prefix: string): Promise<BlobInfo[]>;
  delete(key: string): Promise<void>;
  /** Deletes every object under prefix; returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /** A time-limited URL a client can GET directly, or undefined when the store has none (filesystem). */
  presignGet(key: string, expirySec: number, downloadName?: string): Promise<string | undefined>;
  /**
   * Where a tool such as ffmpeg can read the object itself, seeking as it needs (a local path,
   * or a presigned URL that serves byte ranges): media is never copied whole to read it.
   */
  sourceUrl(key: string, expirySec?: number): Promise<string>;
  /**
   * Discards writes under prefix that were started before the date and never finished (S3
   * multipart uploads of a process that died mid-upload, temp files): returns how many.
   */
  abortStaleWrites(prefix: string, startedBefore: Date): Promise<number>;
  health(): Promise<{ ok: boolean; detail?: string }>;
}

/** Keys of one job's objects. */
export const keys = {
  job: (id: string) => `jobs/${id}/`,
  input: (id: string, safeName: string) => `jobs/${id}/input/${safeName}`,
  pcm: (id: string) => `jobs/${id}/pcm/mix.f32`,
  checkpoint: (id: string, chunk: number) => `jobs/${id}/work/chunk-${String(chunk).padStart(5, '0')}.f32`,
  stem: (id: string, stem: string, ext: string) => `jobs/${id}/stems/${stem}.${ext}`,
};

/**
 * Makes a client-supplied file name safe as the last segment of a key: no directories, no
 * traversal, no control characters; unicode letters are kept.
 */
export function safeFileName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .replace(/^\.+/, '')
    .trim()
    .slice(0, 200);
  return cleaned.length > 0 ? cleaned : 'upload';
}

/** Reads a whole object into memory: for small ones only (manifests, plans, checkpoints). */
export async function readObject(blobs: Pick<BlobStore, 'get'>, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await blobs.get(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
