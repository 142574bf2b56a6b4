/**
 * Reading and writing a job's objects: whole small ones, and the markers and manifests of the
 * object layout (packages/contracts, objects.ts), each checked against its schema.
 */
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { CanceledMarker, CompletedMarker, ImportTarget, LiveManifest, PcmManifest, WebhookTarget, objectKeys } from '@stemflow/contracts';
import type { BlobStore } from './port.js';

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
export const markCanceled = (blobs: Pick<BlobStore, 'put'>, jobId: string) =>
  blobs.put(objectKeys.canceled(jobId), Buffer.from(CanceledMarker.parse(new Date().toISOString())), { contentType: 'text/plain' });
export const isMarkedCanceled = (blobs: Pick<BlobStore, 'head'>) => async (jobId: string) => (await blobs.head(objectKeys.canceled(jobId))) !== undefined;

/** A small JSON object of the layout, checked against its schema on the way in and out. */
async function putJson<T>(blobs: Pick<BlobStore, 'put'>, key: string, schema: { parse(value: unknown): T }, value: T) {
  await blobs.put(key, Buffer.from(JSON.stringify(schema.parse(value))), { contentType: 'application/json' });
}
async function getJson<T>(blobs: Pick<BlobStore, 'get'>, key: string, schema: { parse(value: unknown): T }): Promise<T | undefined> {
  const bytes = await readObjectIfAny(blobs, key);
  return bytes ? schema.parse(JSON.parse(bytes.toString('utf8'))) : undefined;
}

export const writeWebhookTarget = (blobs: Pick<BlobStore, 'put'>, jobId: string, t: WebhookTarget) => putJson(blobs, objectKeys.webhook(jobId), WebhookTarget, t);
/** The job's webhook target, or undefined when it has none (or was deleted). */
export const readWebhookTarget = (blobs: Pick<BlobStore, 'get'>, jobId: string) => getJson(blobs, objectKeys.webhook(jobId), WebhookTarget);

export const writeImportTarget = (blobs: Pick<BlobStore, 'put'>, jobId: string, t: ImportTarget) => putJson(blobs, objectKeys.importSource(jobId), ImportTarget, t);
/** The job's import URL, or undefined when it has none (or the job was deleted). */
export const readImportTarget = (blobs: Pick<BlobStore, 'get'>, jobId: string) => getJson(blobs, objectKeys.importSource(jobId), ImportTarget);

export const writeLiveManifest = (blobs: Pick<BlobStore, 'put'>, jobId: string, stem: string, m: LiveManifest) => putJson(blobs, objectKeys.liveManifest(jobId, stem), LiveManifest, m);
/** A stem's live manifest, or undefined before the separator wrote it (or after its job ended). */
export const readLiveManifest = (blobs: Pick<BlobStore, 'get'>, jobId: string, stem: string) => getJson(blobs, objectKeys.liveManifest(jobId, stem), LiveManifest);

export const writePcmManifest = (blobs: Pick<BlobStore, 'put'>, jobId: string, m: PcmManifest) => putJson(blobs, objectKeys.pcmManifest(jobId), PcmManifest, m);
export const readPcmManifest = (blobs: Pick<BlobStore, 'get'>, jobId: string) => getJson(blobs, objectKeys.pcmManifest(jobId), PcmManifest);

export const writeCompletedMarker = (blobs: Pick<BlobStore, 'put'>, jobId: string, m: CompletedMarker) => putJson(blobs, objectKeys.completed(jobId), CompletedMarker, m);
