export * from './port.js';
export * from './names.js';
export * from './objects.js';
export { FsBlobStore } from './fs.js';
export { S3BlobStore, contentDisposition, type S3Options } from './s3.js';
import type { StorageSettings } from '@stemflow/config';
import { FsBlobStore } from './fs.js';
import type { BlobStore } from './port.js';
import { S3BlobStore } from './s3.js';

/** S3 when S3_ENDPOINT is set, the filesystem under STORAGE_ROOT otherwise. */
export function createBlobStore(c: StorageSettings): BlobStore {
  if (!c.S3_ENDPOINT) return new FsBlobStore(`${c.STORAGE_ROOT}/objects`);
  if (!c.S3_ACCESS_KEY || !c.S3_SECRET_KEY) throw new Error('S3_ENDPOINT is set but S3_ACCESS_KEY or S3_SECRET_KEY is missing');
  return new S3BlobStore({ endpoint: c.S3_ENDPOINT, accessKey: c.S3_ACCESS_KEY, secretKey: c.S3_SECRET_KEY, bucket: c.S3_BUCKET, region: c.S3_REGION });
}
export { storeChecked, type Sniffer, type StoredFile, type StoreChecked } from './store-checked.js';
