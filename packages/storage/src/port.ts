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
  /** In key order. */
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
   * multipart uploads of a process that died mid-upload, temp files), of those `abandoned` says
   * nobody will finish (all, without it; it is given the key, or for a temp file a key in the
   * same folder): returns how many.
   */
  abortStaleWrites(prefix: string, startedBefore: Date, abandoned?: (key: string) => boolean | Promise<boolean>): Promise<number>;
  health(): Promise<{ ok: boolean; detail?: string }>;
}
