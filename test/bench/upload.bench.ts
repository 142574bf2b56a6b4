/**
 * pnpm bench upload — a 1 GiB upload through the gateway (curl → express/multer → S3 server) against
 * a direct put of the same file into the same S3 server: throughput ratio (target ≥ 0.8) and the
 * gateway's RSS growth during the upload (target ≤ 64 MiB).
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { RabbitBus } from '@stemflow/bus';
import { createApp } from '@stemflow/gateway';
import { MongoJobStore } from '@stemflow/jobs';
import { S3BlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { engineEnv } from '../support/env.js';

const SIZE = 1024 ** 3;
const file = '/tmp/stemflow-bench-1gib.wav';
if (!existsSync(file) || statSync(file).size !== SIZE) {
  // A WAV header, then silence: sniffed as audio, cheap to make.
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(SIZE - 8, 4); h.write('WAVEfmt ', 8); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(2, 22);
  h.writeUInt32LE(44100, 24); h.writeUInt32LE(44100 * 4, 28); h.writeUInt16LE(4, 32); h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(SIZE - 44, 40);
  const out = createWriteStream(file);
  out.write(h);
  const block = Buffer.alloc(1 << 20);
  for (let left = SIZE - 44; left > 0; left -= block.length) if (!out.write(left >= block.length ? block : block.subarray(0, left))) await new Promise<void>((r) => out.once('drain', () => r()));
  await new Promise<void>((r) => out.end(() => r()));
}
const bucket = `bench-upload-${Date.now()}`;
const blobs = new S3BlobStore({ endpoint: engineEnv('S3_ENDPOINT'), accessKey: engineEnv('S3_ACCESS_KEY'), secretKey: engineEnv('S3_SECRET_KEY'), bucket });
const jobs = await MongoJobStore.connect(engineEnv('DATABASE_URL').replace(/\/[^/]*$/, `/bench_upload_${Date.now()}`));
const bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL'), queues: [] });
const app = createApp({ bus, blobs, jobs, log: createLogger('gateway', 'silent') }, { maxUploadBytes: 2 * SIZE });
const server = await new Promise<import('node:http').Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/jobs`;

// Direct put first (also creates the bucket).
let t = performance.now();
await blobs.put('direct/big.wav', createReadStream(file), { size: SIZE });
const direct = (performance.now() - t) / 1000;

globalThis.gc?.();
const before = process.memoryUsage().rss;
let peak = before;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
t = performance.now();
const { stdout } = await promisify(execFile)('curl', ['-s', '-F', `file=@${file};type=audio/wav`, url], { maxBuffer: 1 << 20 });
const viaGateway = (performance.now() - t) / 1000;
clearInterval(sampler);
const id = (JSON.parse(stdout) as { id?: string }).id;

const mibs = (s: number) => (SIZE / 2 ** 20 / s).toFixed(0);
console.log(`1 GiB direct put to the S3 server: ${direct.toFixed(1)} s (${mibs(direct)} MiB/s)`);
console.log(`1 GiB through the gateway:        ${viaGateway.toFixed(1)} s (${mibs(viaGateway)} MiB/s), job ${id}`);
console.log(`throughput ratio gateway/direct: ${(direct / viaGateway).toFixed(2)} (target ≥ 0.8)`);
console.log(`gateway RSS growth during the upload: ${((peak - before) / 2 ** 20).toFixed(0)} MiB (target ≤ 64 MiB)`);
server.close();
await blobs.deletePrefix('');
await bus.close();
await jobs.close();
