import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { AudioFormat } from '@stemflow/contracts';

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

/** Keys of one job's objects. */
export const keys = {
  job: (id: string) => `jobs/${id}/`,
  /**
   * The uploaded file, under a neutral name: nothing the client chose (its extension above all)
   * reaches the tools that read it. The client's name is kept in the job record, for display.
   */
  input: (id: string) => `jobs/${id}/input/source`,
  pcm: (id: string) => `jobs/${id}/pcm/mix.f32`,
  /** The separator's work area: the plan, the checkpoints of every pass, the pieces of stems being streamed. */
  work: (id: string) => `jobs/${id}/work/`,
  /**
   * What a job makes on its way to its stems (the decoded PCM, the work area): of no use once the
   * job failed or was canceled, so removed then rather than at its expiry.
   */
  intermediates: (id: string) => [`jobs/${id}/pcm/`, keys.work(id)],
  /** The input (or its window) at the stems' rate, when that is not 44.1 kHz: the mix the residual is taken from. */
  nativePcm: (id: string) => `jobs/${id}/pcm/native.f32`,
  /**
   * A stem being made, while the job runs: its bytes in pieces named by their offset in the file,
   * with a manifest (format, content type, final length when known). Removed when the job ends.
   */
  liveStem: (id: string, stem: string) => `jobs/${id}/work/live/${stem}/`,
  livePart: (id: string, stem: string, offset: number) => `jobs/${id}/work/live/${stem}/${String(offset).padStart(13, '0')}`,
  /** The offset in the file of the piece stored under `key` (the inverse of livePart). */
  livePartOffset: (key: string) => Number(key.slice(key.lastIndexOf('/') + 1)),
  liveManifest: (id: string, stem: string) => `jobs/${id}/work/live/${stem}.json`,
  /** Left by the gateway when a job is canceled: workers that missed the event still see it. */
  canceled: (id: string) => `jobs/${id}/canceled`,
  /** Left by the separator once job.completed is published: a redelivery does not separate again. */
  completed: (id: string) => `jobs/${id}/completed.json`,
  /**
   * The job's job.created event as the gateway published it (options, owner, the key's quota, what
   * it reuses): announced again from here when a job is resumed, so nothing it carried is lost.
   */
  created: (id: string) => `jobs/${id}/created.json`,
  /** Written by the gateway before job.created when the job's end goes to a webhook: { url, owner }. */
  webhook: (id: string) => `jobs/${id}/webhook.json`,
  /**
   * Written by the gateway before job.created when the input is given by URL: { url }, whole (it
   * may hold credentials or a signed query; events and the read model carry it redacted). The
   * decoder fetches it into `input`.
   */
  importSource: (id: string) => `jobs/${id}/import.json`,
  /** A stem's waveform peaks at one zoom level (samples per pixel), computed on first request. */
  peaks: (id: string, stem: string, samplesPerPixel: number) => `jobs/${id}/peaks/${stem}.${samplesPerPixel}.json`,
  /** A mixdown of some stems with gains, rendered on first request; `name` is the request's hash. */
  mix: (id: string, name: string, ext: string) => `jobs/${id}/mixes/${name}.${ext}`,
  stem: (id: string, stem: string, ext: string) => `jobs/${id}/stems/${stem}.${ext}`,
};

/** What the gateway needs to serve a stem while it is made (written by the separator before the first piece). */
export type LiveManifest = { format: AudioFormat; contentType: string; sampleRate: number; frames: number; bytes: number | null };

/** Longest file name kept, in UTF-8 bytes (what file systems and zip tools allow). */
export const MAX_NAME_BYTES = 255;

/**
 * Characters removed from names: controls (C0, DEL, C1), bidirectional overrides and isolates
 * (U+202A–U+202E, U+2066–U+2069: "song\u202Eevil.mp3" would display reversed), directional
 * marks, line/paragraph separators and the BOM.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/** Cuts a string to at most `max` UTF-8 bytes, on a grapheme boundary (no half emoji or accent). */
export function cutUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  let bytes = 0;
  for (const { segment } of new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(s)) {
    const b = Buffer.byteLength(segment);
    if (bytes + b > max) break;
    out += segment;
    bytes += b;
  }
  return out;
}

/**
 * Makes a client-supplied file name safe to show, to store in a record and to use in a download's
 * name: no directories, no traversal, no control or bidi characters, at most 255 UTF-8 bytes (the
 * extension kept when the name is cut); unicode letters are kept.
 */
export function safeFileName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base.normalize('NFC').replace(UNSAFE, '').replace(/^\.+/, '').trim();
  if (!cleaned) return 'upload';
  const dot = cleaned.lastIndexOf('.');
  const ext = dot > 0 && Buffer.byteLength(cleaned) - Buffer.byteLength(cleaned.slice(0, dot)) <= 16 ? cleaned.slice(dot) : '';
  const stem = cutUtf8(cleaned.slice(0, cleaned.length - ext.length), MAX_NAME_BYTES - Buffer.byteLength(ext)).trim();
  return stem ? stem + ext : 'upload';
}

/**
 * A stream passed through unchanged while its SHA-256 is computed (for a put that reports the
 * stored file's hash). The source's errors reach the returned stream, so a put waiting on it fails
 * instead of waiting forever.
 */
export function sha256Passing(source: Readable): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  const stream = new PassThrough({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  source.on('error', (err) => stream.destroy(err));
  source.pipe(stream);
  return { stream, digest: () => hash.digest('hex') };
}

/** The gateway's cancel marker: workers that missed the job.canceled event find it here. */
export const markCanceled = (blobs: Pick<BlobStore, 'put'>, jobId: string) => blobs.put(keys.canceled(jobId), Buffer.from(new Date().toISOString()), { contentType: 'text/plain' });
export const isMarkedCanceled = (blobs: Pick<BlobStore, 'head'>) => async (jobId: string) => (await blobs.head(keys.canceled(jobId))) !== undefined;

/** Where a job's end is POSTed: written by the gateway before job.created, read by the webhook service. */
export type WebhookTarget = { url: string; owner: string | null };
export const writeWebhookTarget = (blobs: Pick<BlobStore, 'put'>, jobId: string, t: WebhookTarget) =>
  blobs.put(keys.webhook(jobId), Buffer.from(JSON.stringify(t)), { contentType: 'application/json' });
/** The job's webhook target, or undefined when it has none (or was deleted). */
export async function readWebhookTarget(blobs: Pick<BlobStore, 'get'>, jobId: string): Promise<WebhookTarget | undefined> {
  const bytes = await readObjectIfAny(blobs, keys.webhook(jobId));
  return bytes ? (JSON.parse(bytes.toString('utf8')) as WebhookTarget) : undefined;
}

/** Where an input given by URL is fetched from (the whole URL). */
export type ImportTarget = { url: string };
export const writeImportTarget = (blobs: Pick<BlobStore, 'put'>, jobId: string, t: ImportTarget) =>
  blobs.put(keys.importSource(jobId), Buffer.from(JSON.stringify(t)), { contentType: 'application/json' });
/** The job's import URL, or undefined when it has none (or the job was deleted). */
export async function readImportTarget(blobs: Pick<BlobStore, 'get'>, jobId: string): Promise<ImportTarget | undefined> {
  const bytes = await readObjectIfAny(blobs, keys.importSource(jobId));
  return bytes ? (JSON.parse(bytes.toString('utf8')) as ImportTarget) : undefined;
}

/** A small object, or undefined when there is none: one request (both stores answer NOT_FOUND). */
export async function readObjectIfAny(blobs: Pick<BlobStore, 'get'>, key: string): Promise<Buffer | undefined> {
  try {
    return await readObject(blobs, key);
  } catch (err) {
    if ((err as { code?: string }).code === 'OBJECT_NOT_FOUND') return undefined;
    throw err;
  }
}

/** Reads a whole object into memory: for small ones only (manifests, plans, checkpoints). */
export async function readObject(blobs: Pick<BlobStore, 'get'>, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await blobs.get(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
