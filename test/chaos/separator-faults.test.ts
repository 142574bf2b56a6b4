/**
 * The separator when it cannot finish, and when a job outlasts the broker's consumer timeout.
 * Gateway, decoder and status run as their own processes on the real engines; the separator runs
 * in this process on its own copy of the queue, with an engine whose model runs fail every time,
 * or are slowed down (the tiny model behind a delay): faults a real model cannot be made to show
 * on demand.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES, StemflowError, HEADERS, type QueueSpec } from '@stemflow/contracts';
import { RabbitBus } from '@stemflow/bus';
import { ort } from '@stemflow/models';
import { HtdemucsEngine, startSeparator } from '@stemflow/separator';
import { createLogger } from '@stemflow/telemetry';
import { toneWav } from '../support/audio.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { eventually } from '../support/env.js';
import { uploadJob } from '../support/jobs-http.js';
import { deleteQueues, withChannel } from '../support/rabbit.js';

const run = promisify(execFile);
const tiny = fileURLToPath(new URL('../../models/tiny/tiny-htdemucs.onnx', import.meta.url));
const log = createLogger('test-separator', 'silent');
const HOLD_MS = Number(process.env.TEST_HOLD_MS ?? 2000);
let c: Cluster;
let n = 0;

beforeAll(async () => {
  c = await startCluster({ services: ['status', 'decoder', 'gateway'] });
}, 120_000);
afterAll(async () => {
  await c?.stop();
});

const queueCopy = (retry: QueueSpec['retry']): QueueSpec => ({ ...QUEUES.separator, name: `test.sep.${uuidv7()}`, retry });
const upload = async (sec: number) => {
  const wav = await toneWav(sec, 200 + ++n);
  return uploadJob(c.api, { name: `fault-${n}.wav`, data: wav });
};
const ended = (id: string, timeoutMs = 90_000) =>
  eventually(async () => {
    const j = await c.jobs.get(id);
    return j && ['completed', 'failed', 'canceled'].includes(j.status) ? j : undefined;
  }, { timeoutMs, what: `job ${id} to end` });

describe('a separator that cannot finish', () => {
  it('fails the job with the reason after its attempts, parks the message in the .dlq, and stays healthy', { timeout: 120_000 }, async () => {
    const q = queueCopy({ maxAttempts: 3, delaysMs: [300, 600] });
    const session = await ort.InferenceSession.create(tiny);
    let attempts = 0;
    const engine = new (class extends HtdemucsEngine {
      override async infer(): Promise<never> {
        attempts++;
        throw new StemflowError('ENGINE_FAILED', 'the model run failed: out of memory', { retryable: true });
      }
    })(session);
    const sep = await startSeparator({ bus: c.bus, blobs: c.blobs, log, engine }, q);
    try {
      const id = await upload(4);
      const job = await ended(id);
      expect(job.status).toBe('failed');
      expect(job.error_message).toBe('gave up after 3 attempts: the model run failed: out of memory');
      expect(attempts).toBe(3);
      const parked = await withChannel(async (ch) => ch.get(`${q.name}.dlq`, { noAck: true }));
      expect(parked && JSON.parse(parked.content.toString()).jobId).toBe(id);
      expect(parked && String(parked.properties.headers?.[HEADERS.parkReason])).toMatch(/gave up after 3 attempts/);
      expect((await fetch(`${c.api}/api/health`)).status).toBe(200);
      const view = (await (await fetch(`${c.api}/api/jobs/${id}`)).json()) as { status: string; error_message: string };
      expect(view).toMatchObject({ status: 'failed', error_message: job.error_message });
    } finally {
      await sep.stop();
      await withChannel((ch) => deleteQueues(ch, q));
    }
  });
});

describe('a job longer than the consumer timeout', () => {
  const rabbitmqctl = (...args: string[]) => run('bash', ['infra/engines.sh', 'rabbitmqctl', ...args]);
  // The broker checks the timeout on each channel's tick (every 60 s by default): tick fast too.
  const setTimeoutMs = async (ms: number, tickMs: number) => {
    await rabbitmqctl('eval', `application:set_env(rabbit, consumer_timeout, ${ms}).`);
    await rabbitmqctl('eval', `application:set_env(rabbit, channel_tick_interval, ${tickMs}).`);
  };

  it('completes: the separator hands the job back to the queue before the broker would take it', { timeout: 180_000 }, async () => {
    const q = queueCopy({ maxAttempts: 3, delaysMs: [300, 600] });
    const session = await ort.InferenceSession.create(tiny);
    const engine = new (class extends HtdemucsEngine {
      override async infer(p: Parameters<HtdemucsEngine['infer']>[0]) {
        await new Promise((r) => setTimeout(r, 1200)); // a slow device: 1.2 s per chunk
        return super.infer(p);
      }
    })(session);
    // Channels check the timeout on their tick (every 60 s by default): for this test, a 10 s
    // timeout checked every 0.5 s (the other consumers here ack within a second).
    const TIMEOUT_MS = 10_000;
    await setTimeoutMs(TIMEOUT_MS, 500);
    let sep: Awaited<ReturnType<typeof startSeparator>> | undefined;
    // Its own connection and logger: the bus's log shows any channel the broker closes.
    const sepLog = createLogger('test-separator', 'info', capture());
    const bus = await RabbitBus.connect({ url: c.env.AMQP_URL!, log: sepLog });
    try {
      sep = await startSeparator({ bus, blobs: c.blobs, log: sepLog, engine, maxHoldMs: HOLD_MS }, q);
      const started = Date.now();
      const id = await upload(60); // about 10 chunks: 12 s or more at this rate
      const job = await ended(id, 150_000);
      const took = Date.now() - started;
      expect(job.status, job.error_message ?? '').toBe('completed');
      expect(took).toBeGreaterThan(TIMEOUT_MS); // it really outlasted the timeout
      expect(job.stems.map((s) => s.name)).toEqual(['drums', 'bass', 'other', 'vocals']);
      // The broker never had to take a delivery back: no channel closed on a timeout.
      expect(lines.filter((l) => /timed out|closed the consumer channel/.test(l))).toEqual([]);
      expect(lines.filter((l) => l.includes('handing it back to the queue')).length).toBeGreaterThanOrEqual(2);
      // Nothing was parked, and no delivery was lost to the timeout.
      expect(await withChannel(async (ch) => (await ch.checkQueue(`${q.name}.dlq`)).messageCount)).toBe(0);
      expect(c.terminal.get(id)?.map((e) => e.type)).toEqual(['job.completed']);
    } finally {
      await setTimeoutMs(10_800_000, 60_000);
      await sep?.stop();
      await bus.close();
      await withChannel((ch) => deleteQueues(ch, q));
    }
  });
});

/** Log lines of the slowed separator (its hand-backs, and any channel the broker closed). */
const lines: string[] = [];
function capture() {
  return { write: (line: string) => lines.push(line) > 0 } as unknown as NodeJS.WritableStream;
}
