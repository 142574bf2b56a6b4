import { Client } from 'minio';
import { engineEnv } from './env.js';

export function s3Client(): Client {
  const url = new URL(engineEnv('S3_ENDPOINT'));
  return new Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: url.protocol === 'https:',
    accessKey: engineEnv('S3_ACCESS_KEY'),
    secretKey: engineEnv('S3_SECRET_KEY'),
    pathStyle: true,
    region: 'us-east-1',
  });
}
