/**
 * The example consumer (examples/python-consumer: Python, pika, jsonschema, the minio client),
 * written from docs/architecture.md and docs/asyncapi.yaml alone, against the deployed services on the real
 * broker and store. It must find every promise kept — headers and payloads as documented, stems
 * readable with the documented access, their sizes, hashes and durations as job.completed says —
 * see one job.completed per job, and lose nothing across its own restart. The cluster runs with
 * OTEL_SDK_DISABLED=true, so `traceparent` must be there without spans being exported.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/cluster.js';
import { engineEnv, eventually } from '../support/env.js';
import { mixtureWav, uploadJob } from '../support/jobs-http.js';
import { deleteQueues, withChannel } from '../support/rabbit.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
type Line = { jobId: string; type: string; eventId: string; problems: string[]; stems?: { name: string; bytes: number; seconds: number }[]; durationSec?: number; reusedFrom?: string | null; ready?: boolean };

let c: Cluster;
let song: { wav: Buffer; frames: number };
const queue = `example.python-consumer.${uuidv7()}`;
const state = join(mkdtempSync(join(tmpdir(), 'consumer-')), 'handled.txt');
const lines: Line[] = [];
let consumer: ChildProcess | undefined;
let output = '';

/** Starts the consumer as docs/architecture.md says, and waits until it listens. */
async function startConsumer() {
  const ready = lines.filter((l) => l.ready).length;
  consumer = spawn(engineEnv('STEMFLOW_CONSUMER_PYTHON'), ['examples/python-consumer/consumer.py'], {
    cwd: root,
    env: { ...process.env, AMQP_URL: c.env.AMQP_URL, S3_ENDPOINT: c.env.S3_ENDPOINT, S3_ACCESS_KEY: c.env.S3_ACCESS_KEY, S3_SECRET_KEY: c.env.S3_SECRET_KEY, S3_BUCKET: c.env.S3_BUCKET, QUEUE: queue, STATE: state, ASYNCAPI: 'docs/asyncapi.yaml' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  consumer.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Line);
      buf = buf.slice(i + 1);
    }
  });
  consumer.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await eventually(() => lines.filter((l) => l.ready).length > ready, { timeoutMs: 30_000, what: `the consumer to listen:\n${output}` });
}
const report = (jobId: string) => eventually(() => lines.find((l) => l.jobId === jobId), { timeoutMs: 180_000, what: `the consumer's report of ${jobId}:\n${output}` });

beforeAll(async () => {
  c = await startCluster(); // OTEL_SDK_DISABLED=true: no spans exported, traceparent still sent
  song = await mixtureWav(8);
  await startConsumer();
}, 180_000);
afterAll(async () => {
  consumer?.kill('SIGKILL');
  await withChannel((ch) => deleteQueues(ch, { name: queue, bindings: [], prefetch: 1, retry: { maxAttempts: 1, delaysMs: [1] }, stage: 'x', failJobOnGiveUp: false, description: '' })).catch(() => {});
  await c?.stop();
});

describe('an outside consumer, from the documents alone', () => {
  let first: string;

  it('finds job.completed as documented: headers, schema, stems readable, sizes, hashes and durations right', async () => {
    first = await uploadJob(c.api, { name: 'consumer song.wav', data: song.wav });
    const line = await report(first);
    expect(line.type).toBe('job.completed');
    expect(line.problems).toEqual([]);
    expect(line.durationSec).toBeCloseTo(song.frames / 44100, 9);
    expect(line.stems!.map((s) => s.name)).toEqual(['drums', 'bass', 'other', 'vocals']);
    for (const s of line.stems!) expect(s.seconds).toBeCloseTo(song.frames / 44100, 4);
  });

  it('loses nothing across its own restart, and reports each job once', async () => {
    consumer!.kill('SIGKILL');
    await new Promise((r) => consumer!.once('exit', r));
    // Published while it is down: an identical upload (stems reused) and a new separation.
    const reused = await uploadJob(c.api, { name: 'consumer song again.wav', data: song.wav });
    const other = await uploadJob(c.api, { name: 'consumer song flac.wav', data: song.wav }, { format: 'flac' });
    await eventually(() => c.terminal.get(reused) && c.terminal.get(other), { timeoutMs: 180_000, what: 'both jobs done while the consumer is down' });
    await startConsumer();
    const r = await report(reused);
    expect(r.problems).toEqual([]);
    expect(r.reusedFrom).toBe(first);
    expect(r.durationSec).toBeCloseTo(song.frames / 44100, 6); // a reused job has no job.decoded: the duration is in job.completed
    expect((await report(other)).problems).toEqual([]);
    // Each job once, across the restart and any redelivery.
    await new Promise((r) => setTimeout(r, 2000));
    for (const id of [first, reused, other]) expect(lines.filter((l) => l.jobId === id)).toHaveLength(1);
  });
});
