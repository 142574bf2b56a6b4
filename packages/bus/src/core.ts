/**
 * What happens to one delivered message, the same for both adapters: parse, validate, run the
 * handler inside a consumer span, then ack, retry later, or park. Adapters only move bytes.
 */
import {
  EVENTS,
  HEADERS,
  MAX_DELIVERIES,
  describeError,
  eventsFor,
  EVENT_NAMES,
  isEventName,
  isRetryable,
  StemflowError,
  type AnyEvent,
  type EventName,
  type QueueSpec,
} from '@stemflow/contracts';
import { extractTraceContext, injectTraceHeaders, type Logger, messagesSettled, SpanKind, withSpan } from '@stemflow/telemetry';
import { newEvent } from './events.js';
import type { EventBus, Handler, Handlers, RawMessage } from './port.js';

/** The process refuses to start when a consumed event has no handler, or a handler no event. */
export function checkHandlers(spec: QueueSpec, handlers: Handlers): void {
  const consumed = eventsFor(spec, EVENT_NAMES);
  const given = Object.keys(handlers).filter((k) => handlers[k as EventName] !== undefined);
  const missing = consumed.filter((e) => !given.includes(e));
  const extra = given.filter((e) => !consumed.includes(e as EventName));
  if (missing.length || extra.length) {
    throw new Error(
      `queue ${spec.name}: ${missing.length ? `no handler for ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `handlers for events it never receives: ${extra.join(', ')}` : ''}`,
    );
  }
}

export type Outcome =
  | { kind: 'ack' }
  | { kind: 'retry'; delayMs: number; headers: Record<string, unknown> }
  | { kind: 'park'; reason: string; headers: Record<string, unknown> };

export const headerString = (v: unknown): string | undefined =>
  Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
const headerInt = (v: unknown): number => {
  const n = Number(headerString(v) ?? 0);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0;
};

/** Delay before retry number `retry` (1-based), with jitter in [d/2, d]. */
export function retryDelay(spec: QueueSpec, retry: number, random = Math.random): number {
  const delays = spec.retry.delaysMs;
  const d = delays[Math.min(retry, delays.length) - 1] ?? delays[delays.length - 1] ?? 1000;
  return Math.round(d / 2 + random() * (d / 2));
}

/** The fixed delay level a jittered delay belongs to (retry queues are declared per level). */
export const retryLevel = (spec: QueueSpec, retry: number): number => {
  const delays = spec.retry.delaysMs;
  return delays[Math.min(retry, delays.length) - 1] ?? delays[delays.length - 1] ?? 1000;
};

type ProcessDeps = { bus: Pick<EventBus, 'publish'>; log: Logger };

/** Parses and validates a body; returns the event or why it is not one. */
export function decode(body: Buffer): { event: AnyEvent } | { error: string; jobId?: string } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { error: `malformed JSON: ${describeError(err)}` };
  }
  const type = (json as { type?: unknown } | null)?.type;
  const jobId = typeof (json as { jobId?: unknown } | null)?.jobId === 'string' ? (json as { jobId: string }).jobId : undefined;
  if (!isEventName(type)) return { error: `unknown event type ${JSON.stringify(type)}`, ...(jobId ? { jobId } : {}) };
  const parsed = EVENTS[type].safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    return { error: `${type} violates its schema: ${issues}`, ...(jobId ? { jobId } : {}) };
  }
  return { event: parsed.data as AnyEvent };
}

/** Runs the handler for one raw message and says how to settle it (counted in the metrics). */
export async function processMessage(spec: QueueSpec, handlers: Handlers, msg: RawMessage, deps: ProcessDeps): Promise<Outcome> {
  const decoded = decode(msg.body);
  const outcome = await settle(spec, handlers, msg, decoded, deps);
  messagesSettled.inc({ queue: spec.name, event: 'event' in decoded ? decoded.event.type : 'invalid', outcome: outcome.kind });
  return outcome;
}

async function settle(spec: QueueSpec, handlers: Handlers, msg: RawMessage, decoded: ReturnType<typeof decode>, deps: ProcessDeps): Promise<Outcome> {
  if ('error' in decoded) {
    deps.log.warn({ queue: spec.name, messageId: msg.messageId, reason: decoded.error }, 'parking a message that is not a valid event');
    return { kind: 'park', reason: decoded.error, headers: msg.headers };
  }
  const event = decoded.event;
  const log = deps.log.child({ jobId: event.jobId, eventId: event.id, event: event.type, queue: spec.name });
  const handler = handlers[event.type] as Handler<typeof event.type> | undefined;
  if (!handler) return { kind: 'ack' };

  const retries = headerInt(msg.headers[HEADERS.retryCount]);
  const attempt = retries + 1;
  if (msg.deliveryCount >= MAX_DELIVERIES) {
    const reason = `gave up: the message was delivered ${msg.deliveryCount} times without being acknowledged (the consumer kept crashing)`;
    await giveUp(spec, event, reason, deps.bus, log);
    return { kind: 'park', reason, headers: msg.headers };
  }

  const parent = extractTraceContext(msg.headers);
  try {
    await withSpan(
      `${spec.name} process ${event.type}`,
      {
        kind: SpanKind.CONSUMER,
        parent,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': spec.name,
          'messaging.message.id': event.id,
          'stemflow.job_id': event.jobId,
          'stemflow.attempt': attempt,
        },
      },
      () => handler(event as never, { attempt, redelivered: msg.redelivered || msg.deliveryCount > 0, queue: spec.name, log }),
    );
    return { kind: 'ack' };
  } catch (err) {
    const reason = describeError(err);
    if (!isRetryable(err)) {
      // A permanent failure of the job (not audio, too long…): the job fails, the message is done.
      log.info({ err: reason, code: (err as StemflowError).code }, 'job failed permanently');
      if (spec.failJobOnGiveUp) await failJob(spec, event, reason, (err as StemflowError).code, deps.bus, (err as StemflowError).stage);
      return { kind: 'ack' };
    }
    if (attempt < spec.retry.maxAttempts) {
      const delayMs = retryDelay(spec, attempt);
      log.warn({ err: reason, attempt, delayMs }, 'handler failed, will retry');
      return {
        kind: 'retry',
        delayMs,
        headers: {
          ...msg.headers,
          [HEADERS.retryCount]: attempt,
          [HEADERS.lastError]: reason.slice(0, 1000),
          [HEADERS.firstFailureAt]: headerString(msg.headers[HEADERS.firstFailureAt]) ?? new Date().toISOString(),
        },
      };
    }
    const why = `gave up after ${attempt} attempts: ${reason}`;
    await giveUp(spec, event, why, deps.bus, log);
    return { kind: 'park', reason: why, headers: { ...msg.headers, [HEADERS.lastError]: reason.slice(0, 1000) } };
  }
}

async function giveUp(spec: QueueSpec, event: AnyEvent, reason: string, bus: Pick<EventBus, 'publish'>, log: Logger) {
  log.error({ reason }, 'parking message');
  if (spec.failJobOnGiveUp) await failJob(spec, event, reason, 'GAVE_UP', bus);
}

async function failJob(spec: QueueSpec, event: AnyEvent, reason: string, code: string, bus: Pick<EventBus, 'publish'>, stage = spec.stage) {
  if (event.type === 'job.failed' || event.type === 'job.canceled') return;
  await bus.publish(newEvent('job.failed', event.jobId, { stage, reason, code, retryable: false }));
}

/** Headers every published event carries: version and the W3C trace context. */
export const publishHeaders = (event: AnyEvent): Record<string, unknown> =>
  injectTraceHeaders({ [HEADERS.eventVersion]: event.version } as Record<string, unknown>);

/** Re-validates an outgoing event: publishing a wrong payload is a bug, caught before the wire. */
export function encode(event: AnyEvent): Buffer {
  const parsed = EVENTS[event.type].safeParse(event);
  if (!parsed.success) throw new StemflowError('INVALID_EVENT', `refusing to publish an invalid ${event.type}: ${parsed.error.message}`);
  return Buffer.from(JSON.stringify(parsed.data));
}

/** Publishes inside a PRODUCER span whose context travels in the headers. */
export function tracedPublish(event: AnyEvent, send: (body: Buffer, headers: Record<string, unknown>) => Promise<void>): Promise<void> {
  const body = encode(event);
  return withSpan(
    `publish ${event.type}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'send', 'messaging.destination.name': event.type, 'messaging.message.id': event.id, 'stemflow.job_id': event.jobId },
    },
    () => send(body, publishHeaders(event)),
  );
}
