import type { EventName } from './events.js';

/** The one exchange every event is published to; routing key = event name. */
export const EXCHANGE = 'stemflow.events';
/** Where parked (dead) messages go; routing key = the queue they were parked from. */
export const DEAD_LETTER_EXCHANGE = 'stemflow.dlx';

export type RetryPolicy = {
  /** Handler attempts in all, the first included. */
  maxAttempts: number;
  /** Delay before retry n (1-based) is delays[min(n, len) - 1]; each gets full jitter in [d/2, d]. */
  delaysMs: readonly number[];
};

export type QueueSpec = {
  name: string;
  /** Routing-key patterns bound on EXCHANGE (`*` one word, `#` any). */
  bindings: readonly string[];
  /** Messages in flight per consumer. */
  prefetch: number;
  retry: RetryPolicy;
  /** Stage named in the job.failed published when a message of this queue is given up. */
  stage: string;
  /** Whether giving up on a message fails its job (not for the status projection itself). */
  failJobOnGiveUp: boolean;
  /**
   * One consumer at a time receives (others stand by and take over when it goes): the queue's
   * order is kept and replicas never write the same job at once.
   */
  singleActiveConsumer?: boolean;
  /**
   * A queue of one process (exclusive, deleted when it disconnects, not durable): notifications
   * every instance must see (progress for its SSE clients, cancellations). No retries, no parking:
   * what it misses while disconnected, the process recovers from its own state.
   */
  ephemeral?: boolean;
  description: string;
};

/**
 * Deliveries of one message (crashes included) after which it is parked: a message that kills its
 * consumer every time must not loop forever. The broker's x-delivery-limit is a backstop above it.
 */
export const MAX_DELIVERIES = 5;

const defaultRetry: RetryPolicy = { maxAttempts: 5, delaysMs: [1_000, 5_000, 30_000, 120_000] };

export const QUEUES = {
  decoder: {
    name: 'decoder.job-created',
    bindings: ['job.created'],
    prefetch: 2,
    retry: defaultRetry,
    stage: 'decoding',
    failJobOnGiveUp: true,
    description: 'Decoder: turn an uploaded file into 44.1 kHz stereo float PCM.',
  },
  separator: {
    name: 'separator.job-decoded',
    bindings: ['job.decoded'],
    prefetch: 1,
    retry: { maxAttempts: 3, delaysMs: [5_000, 30_000] },
    stage: 'separating',
    failJobOnGiveUp: true,
    description: 'Separator: one model instance, one job at a time.',
  },
  status: {
    name: 'status.job-events',
    bindings: ['job.#'],
    // The job store writes what is in flight in batches, so many in flight make fewer, larger
    // writes (pnpm bench status on FerretDB at 200/s: p99 lag 8.9 s with 64, 1.0 s with 256 or 1024).
    prefetch: 256,
    // A database outage of up to ~15 minutes is ridden out by retries, not parked.
    retry: { maxAttempts: 20, delaysMs: [1_000, 5_000, 15_000, 60_000] },
    stage: 'status',
    failJobOnGiveUp: false,
    singleActiveConsumer: true,
    description: 'Status: project every job event into the read model.',
  },
  webhooks: {
    name: 'webhooks.job-events',
    bindings: ['job.completed', 'job.failed', 'job.canceled'],
    // Each delivery waits on someone else's server: several at once, one slow receiver holds one slot.
    prefetch: 32,
    // About 13 hours of attempts (Standard Webhooks' suggested schedule, shortened): 5 s, 5 min,
    // 30 min, 2 h, 5 h, 5 h; then parked in webhooks.job-events.dlq and the job records the failure.
    retry: { maxAttempts: 7, delaysMs: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000] },
    stage: 'webhook',
    failJobOnGiveUp: false,
    description: "Webhooks: POST each job's end, signed (Standard Webhooks), to its callback URL.",
  },
} as const satisfies Record<string, QueueSpec>;

export type QueueKey = keyof typeof QUEUES;

/** Per-process queues: `<role>.<instance id>`, bound as given, ephemeral. */
export function instanceQueue(role: 'gateway-events' | 'cancels', instanceId: string, bindings: readonly string[], description: string): QueueSpec {
  return { name: `${role}.${instanceId}`, bindings, prefetch: 256, retry: { maxAttempts: 1, delaysMs: [1_000] }, stage: role, failJobOnGiveUp: false, ephemeral: true, description };
}
/** What every gateway receives (each on its own queue): every job event, for its SSE streams. */
export const gatewayEventsQueue = (instanceId: string) => instanceQueue('gateway-events', instanceId, ['job.#'], 'A gateway: every job event, fanned out to its open SSE streams.');
/** What every decoder and separator receives (each on its own queue): cancellations. */
export const cancelsQueue = (instanceId: string) => instanceQueue('cancels', instanceId, ['job.canceled'], 'A worker: cancellations, applied between chunks.');

export const retryQueueName = (queue: string, delayMs: number) => `${queue}.retry.${delayMs}ms`;
export const parkingQueueName = (queue: string) => `${queue}.dlq`;

/** Does a binding pattern (AMQP topic syntax) match a routing key? */
export function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return match(i + 1, j) || (j < k.length && match(i, j + 1));
    if (j === k.length) return false;
    return (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

/** Which events a queue receives, from its bindings. */
export const eventsFor = (spec: Pick<QueueSpec, 'bindings'>, names: readonly EventName[]): EventName[] =>
  names.filter((n) => spec.bindings.some((b) => topicMatches(b, n)));

/** Message headers (AMQP) that carry metadata besides the W3C trace context. */
export const HEADERS = {
  eventVersion: 'x-event-version',
  retryCount: 'x-retry-count',
  lastError: 'x-last-error',
  firstFailureAt: 'x-first-failure-at',
  parkReason: 'x-park-reason',
  parkedFrom: 'x-parked-from',
  /** Set by quorum queues on redelivery (crash, nack, channel loss). */
  deliveryCount: 'x-delivery-count',
} as const;
