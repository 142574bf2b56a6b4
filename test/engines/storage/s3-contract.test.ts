import { S3BlobStore } from '@stemflow/storage';
import { blobStoreContract } from '@stemflow/storage/contract';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { engineEnv } from '../../support/env.js';

const make = async () =>
  new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket: 'stemflow-test' });

blobStoreContract('S3 (versitygw)', make, { presigns: true });

it('uploads a 40 MiB stream of unknown length in multipart parts', { timeout: 60_000 }, async () => {
  const s = await make();
  const part = Buffer.alloc(1024 * 1024, 7);
  let n = 0;
  const body = new Readable({ read() { this.push(n++ < 40 ? part : null); } });
  const key = `jobs/multipart-${Date.now()}/input/big.bin`;
  expect(await s.put(key, body)).toEqual({ bytes: 40 * 1024 * 1024 });
  expect((await s.head(key))?.size).toBe(40 * 1024 * 1024);
  await s.delete(key);
});

it('reports an unreachable server as retryable DEPENDENCY_UNAVAILABLE', async () => {
  const s = new S3BlobStore({ endpoint: 'http://127.0.0.1:1', accessKey: 'a', secretKey: 'b', bucket: 'x-bucket' });
  await expect(s.head('k')).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
  expect((await s.health()).ok).toBe(false);
});
