/**
 * Proves each engine the suite relies on is real and reachable: every assertion is on an answer
 * from a real server over a real connection.
 */
import { spawn } from 'node:child_process';
import { SpanKind, trace } from '@opentelemetry/api';
import { connect } from 'amqplib';
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { engineEnv, eventually, unique } from '../support/env.js';
import { s3Client } from '../support/s3.js';

describe('RabbitMQ', () => {
  it('confirms a persistent publish and delivers it to a consumer', async () => {
    const conn = await connect(engineEnv('AMQP_URL'));
    try {
      const ch = await conn.createConfirmChannel();
      const q = unique('smoke');
      await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      const body = Buffer.from(JSON.stringify({ hello: 'rabbit' }));
      await new Promise<void>((resolve, reject) =>
        ch.sendToQueue(q, body, { persistent: true, messageId: 'm-1' }, (err) => (err ? reject(err) : resolve())),
      );
      const got = await new Promise<{ body: string; id: unknown }>((resolve) => {
        void ch.consume(q, (msg) => {
          if (!msg) return;
          ch.ack(msg);
          resolve({ body: msg.content.toString(), id: msg.properties.messageId });
        });
      });
      expect(got).toEqual({ body: '{"hello":"rabbit"}', id: 'm-1' });
      await ch.deleteQueue(q);
    } finally {
      await conn.close();
    }
  });
});

describe('S3 server (versitygw) through the minio client', () => {
  it('puts, reads a byte range, and serves a presigned GET', async () => {
    const s3 = s3Client();
    const bucket = unique('smoke').toLowerCase();
    await s3.makeBucket(bucket);
    try {
      const data = Buffer.from('0123456789abcdefghij');
      await s3.putObject(bucket, 'a/b.txt', data, data.length, { 'Content-Type': 'text/plain' });
      const stat = await s3.statObject(bucket, 'a/b.txt');
      expect(stat.size).toBe(20);

      const ranged = await s3.getPartialObject(bucket, 'a/b.txt', 5, 4);
      const chunks: Buffer[] = [];
      for await (const c of ranged) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('5678');

      const url = await s3.presignedGetObject(bucket, 'a/b.txt', 60);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('0123456789abcdefghij');
      const forged = await fetch(url.replace(/X-Amz-Signature=[0-9a-f]+/, `X-Amz-Signature=${'0'.repeat(64)}`));
      expect(forged.status).toBe(403);
    } finally {
      await s3.removeObject(bucket, 'a/b.txt').catch(() => {});
      await s3.removeBucket(bucket);
    }
  });
});

describe('MongoDB wire (FerretDB) through mongoose', () => {
  it('inserts, finds, and enforces a unique index', async () => {
    const conn = await mongoose.createConnection(engineEnv('DATABASE_URL'), { serverSelectionTimeoutMS: 5000 }).asPromise();
    try {
      const Thing = conn.model('Thing', new mongoose.Schema({ key: { type: String, unique: true }, n: Number }), unique('things'));
      await Thing.init();
      await Thing.create({ key: 'a', n: 1 });
      const found = await Thing.findOne({ key: 'a' }).lean();
      expect(found?.n).toBe(1);
      await expect(Thing.create({ key: 'a', n: 2 })).rejects.toMatchObject({ code: 11000 });
      expect(await Thing.countDocuments()).toBe(1);
      await Thing.collection.drop();
    } finally {
      await conn.close();
    }
  });
});

describe('Jaeger', () => {
  it('receives a span over OTLP/HTTP and returns it from its query API', async () => {
    const { TracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace');
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    const { resourceFromAttributes } = await import('@opentelemetry/resources');
    const service = unique('smoke-svc');
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': service }),
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${engineEnv("OTEL_EXPORTER_OTLP_ENDPOINT")}/v1/traces` }) })],
    });
    const span = provider.getTracer('smoke').startSpan('smoke-span', { kind: SpanKind.INTERNAL, attributes: { 'stemflow.test': true } });
    const traceId = span.spanContext().traceId;
    span.end();
    await provider.forceFlush();
    await provider.shutdown();
    expect(trace.isSpanContextValid(span.spanContext())).toBe(true);

    const found = await eventually(
      async () => {
        const res = await fetch(`${engineEnv('JAEGER_QUERY_URL')}/api/traces/${traceId}`);
        if (res.status !== 200) return undefined;
        const body = (await res.json()) as { data: { spans: { operationName: string }[]; processes: Record<string, { serviceName: string }> }[] };
        return body.data[0];
      },
      { what: 'the span in Jaeger' },
    );
    expect(found.spans.map((s) => s.operationName)).toEqual(['smoke-span']);
    expect(Object.values(found.processes)[0]?.serviceName).toBe(service);
  });
});

describe('ffmpeg', () => {
  it('decodes a generated 440 Hz tone to 44.1 kHz float PCM that stays at 440 Hz', async () => {
    const pcm = await new Promise<Buffer>((resolve, reject) => {
      const p = spawn('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=1', '-ac', '2', '-ar', '44100', '-f', 'f32le', '-']);
      const out: Buffer[] = [];
      p.stdout.on('data', (d: Buffer) => out.push(d));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg exit ${code}`))));
    });
    const samples = new Float32Array(pcm.buffer, pcm.byteOffset, pcm.byteLength / 4);
    const frames = samples.length / 2;
    expect(Math.abs(frames - 44100)).toBeLessThanOrEqual(1);
    let crossings = 0;
    for (let i = 2; i < samples.length; i += 2) if ((samples[i - 2]! < 0) !== (samples[i]! < 0)) crossings++;
    expect(crossings / 2).toBeGreaterThan(435);
    expect(crossings / 2).toBeLessThan(445);
  });
});
