/**
 * Prometheus metrics (prom-client), one registry per process. Every service exposes it on
 * `GET /metrics`; in the one-process mode the four services share it, labelled by what they do.
 *
 * Metric names follow Prometheus conventions: `_seconds`, `_total`, base units.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'stemflow_' });

/** Time a job spent in one stage: upload (gateway), decode, separate; `total` is created → terminal. */
export const stageDuration = new Histogram({
  name: 'stemflow_stage_duration_seconds',
  help: 'Time spent in one pipeline stage, per job',
  labelNames: ['stage', 'outcome'] as const,
  buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  registers: [metricsRegistry],
});

/** Wall time of separation over the song's duration: below 1 is faster than real time. */
export const separationRealtimeFactor = new Histogram({
  name: 'stemflow_separation_realtime_factor',
  help: 'Separation wall time divided by the audio duration, per job',
  labelNames: ['device'] as const,
  buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
  registers: [metricsRegistry],
});

/** One model run (one chunk) in ONNX Runtime. */
export const modelRunDuration = new Histogram({
  name: 'stemflow_model_run_seconds',
  help: 'Duration of one session.run of the separation model',
  labelNames: ['device'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20],
  registers: [metricsRegistry],
});

/** The separator's engines (model sessions): the model-run rate over this is their utilization. */
export const separatorEngines = new Gauge({
  name: 'stemflow_separator_engines',
  help: 'Model sessions this separator keeps (each in its own worker thread)',
  registers: [metricsRegistry],
});

/** Every message a consumer settled, by how: ok, retry, parked (dead-lettered), dropped. */
export const messagesSettled = new Counter({
  name: 'stemflow_messages_total',
  help: 'Messages settled by the consumers of this process',
  labelNames: ['queue', 'event', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const httpRequestDuration = new Histogram({
  name: 'stemflow_http_request_duration_seconds',
  help: 'Gateway HTTP requests, by route template',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [metricsRegistry],
});

/** Webhook attempts, by how each ended: delivered, retry (another attempt comes), failed (given up). */
export const webhookAttempts = new Counter({
  name: 'stemflow_webhook_attempts_total',
  help: 'Webhook delivery attempts, by outcome',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

/** Requests refused by a limit of their API key. */
export const limitRefusals = new Counter({
  name: 'stemflow_limit_refusals_total',
  help: 'Requests answered 429, by the limit they hit (concurrency, quota, rate)',
  labelNames: ['limit'] as const,
  registers: [metricsRegistry],
});

export const readModelReads = new Counter({
  name: 'stemflow_read_model_reads_total',
  help: 'Reads of one job from the read model by the gateway, by what asked (api, sse_open, sse_poll)',
  labelNames: ['by'] as const,
  registers: [metricsRegistry],
});

export const sseStreams = new Gauge({
  name: 'stemflow_sse_streams',
  help: 'Open Server-Sent Events streams on this gateway',
  registers: [metricsRegistry],
});

export const uploadedBytes = new Counter({
  name: 'stemflow_uploaded_bytes_total',
  help: 'Bytes of accepted uploads',
  registers: [metricsRegistry],
});

/** Messages waiting in each queue, read from the broker when scraped. */
export function registerQueueDepth(depth: (queue: string) => Promise<number>, queues: string[]): void {
  if (metricsRegistry.getSingleMetric('stemflow_queue_depth')) return;
  new Gauge({
    name: 'stemflow_queue_depth',
    help: 'Messages ready in a queue (not yet delivered), read from the broker at scrape time',
    labelNames: ['queue'] as const,
    registers: [metricsRegistry],
    async collect() {
      this.reset();
      await Promise.all(
        queues.map(async (q) => {
          const n = await depth(q).catch(() => undefined);
          if (n !== undefined) this.set({ queue: q }, n);
        }),
      );
    },
  });
}

/** Jobs in each status, read from the job store when scraped. */
export function registerJobsByStatus(count: () => Promise<Record<string, number>>): void {
  if (metricsRegistry.getSingleMetric('stemflow_jobs')) return;
  new Gauge({
    name: 'stemflow_jobs',
    help: 'Jobs in the read model, by status, read from the job store at scrape time',
    labelNames: ['status'] as const,
    registers: [metricsRegistry],
    async collect() {
      const counts = await count().catch(() => undefined);
      if (!counts) return;
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
}

/** The text exposition format, for `GET /metrics`. */
export async function renderMetrics(): Promise<{ contentType: string; body: string }> {
  return { contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() };
}

/** Times one stage of one job into `stemflow_stage_duration_seconds`, labelled ok or error. */
export async function timeStage<T>(stage: string, fn: () => Promise<T>): Promise<T> {
  const end = stageDuration.startTimer({ stage });
  try {
    const r = await fn();
    end({ outcome: 'ok' });
    return r;
  } catch (err) {
    end({ outcome: 'error' });
    throw err;
  }
}
