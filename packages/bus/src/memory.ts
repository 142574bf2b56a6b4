/**
 * In-process bus for the embedded mode and unit tests. Same semantics as the RabbitMQ adapter where
 * one process can keep them: topic routing to every topology queue, validation, acks after the
 * handler, retry with backoff, parking, per-queue ordering and prefetch. Not durable: a process
 * crash loses what is queued.
 */
import { EXCHANGE, QUEUES, topicMatches, type AnyEvent, type EventName, type EventOf, type QueueSpec } from '@stemflow/contracts';
import { createLogger, type Logger } from '@stemflow/telemetry';
import { checkHandlers, processMessage, tracedPublish } from './core.js';
import type { BusHealth, EventBus, Handlers, RawMessage, Subscription } from './port.js';

type Parked = { body: Buffer; headers: Record<string, unknown>; reason: string };
type MemQueue = {
  spec: QueueSpec;
  ready: RawMessage[];
  parked: Parked[];
  /** prefetch: the subscriber's (as a channel's prefetch is on RabbitMQ), not the declaration's. */
  consumer?: { handlers: Handlers; prefetch: number; inFlight: number; closing: boolean; idle: Set<() => void> };
};

type Consumer = NonNullable<MemQueue['consumer']>;

/** Stops a consumer taking messages and waits for the ones it is handling. */
async function drain(c: Consumer): Promise<void> {
  c.closing = true;
  if (c.inFlight > 0) await new Promise<void>((r) => c.idle.add(r));
}

export class InMemoryBus implements EventBus {
  private readonly queues = new Map<string, MemQueue>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly log: Logger;
  private closed = false;

  constructor(opts: { queues?: QueueSpec[]; log?: Logger } = {}) {
    this.log = opts.log ?? createLogger('bus');
    for (const spec of opts.queues ?? Object.values(QUEUES)) this.declare(spec);
  }

  /** Declares a queue (as the topology does on RabbitMQ): events published from now on are kept. */
  declare(spec: QueueSpec): void {
    if (!this.queues.has(spec.name)) this.queues.set(spec.name, { spec, ready: [], parked: [] });
  }

  async publish<N extends EventName>(event: EventOf<N>): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    await tracedPublish(event as AnyEvent, async (body, headers) => {
      for (const q of this.queues.values()) {
        if (q.spec.bindings.some((b) => topicMatches(b, event.type))) this.enqueue(q, { body, headers: { ...headers }, messageId: event.id, deliveryCount: 0, redelivered: false });
      }
    });
  }

  /** Publishes raw bytes as if some other producer had sent them (tests of bad input). */
  publishRaw(routingKey: string, body: Buffer, headers: Record<string, unknown> = {}): void {
    for (const q of this.queues.values()) {
      if (q.spec.bindings.some((b) => topicMatches(b, routingKey))) this.enqueue(q, { body, headers, deliveryCount: 0, redelivered: false });
    }
  }

  async subscribe(spec: QueueSpec, handlers: Handlers): Promise<Subscription> {
    checkHandlers(spec, handlers);
    this.declare(spec);
    const q = this.queues.get(spec.name)!;
    if (q.consumer && !q.consumer.closing) throw new Error(`queue ${spec.name} already has a consumer in this process`);
    q.consumer = { handlers, prefetch: spec.prefetch, inFlight: 0, closing: false, idle: new Set() };
    this.pump(q);
    const consumer = q.consumer;
    return { close: () => drain(consumer) };
  }

  parked(queue: string): Parked[] {
    return this.queues.get(queue)?.parked ?? [];
  }
  async depth(queue: string): Promise<number> {
    return this.queues.get(queue)?.ready.length ?? 0;
  }

  async health(): Promise<BusHealth> {
    return this.closed ? { ok: false, detail: 'closed' } : { ok: true, detail: `in-process (${EXCHANGE})` };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.all([...this.queues.values()].map((q) => (q.consumer ? drain(q.consumer) : undefined)));
  }

  private enqueue(q: MemQueue, msg: RawMessage) {
    q.ready.push(msg);
    queueMicrotask(() => this.pump(q));
  }

  private pump(q: MemQueue) {
    const c = q.consumer;
    if (!c || c.closing) return;
    while (c.inFlight < c.prefetch && q.ready.length > 0) {
      const msg = q.ready.shift()!;
      c.inFlight++;
      void this.deliver(q, c.handlers, msg).finally(() => {
        c.inFlight--;
        if (c.inFlight === 0) {
          for (const r of c.idle) r();
          c.idle.clear();
        }
        this.pump(q);
      });
    }
  }

  private async deliver(q: MemQueue, handlers: Handlers, msg: RawMessage) {
    let outcome;
    try {
      outcome = await processMessage(q.spec, handlers, msg, { bus: this, log: this.log });
    } catch (err) {
      // Publishing the outcome failed (bus closed): redeliver, as a broker would on a lost channel.
      this.log.warn({ err: String(err), queue: q.spec.name }, 'delivery not settled, requeueing');
      if (!this.closed) q.ready.unshift({ ...msg, deliveryCount: msg.deliveryCount + 1, redelivered: true });
      return;
    }
    if (outcome.kind === 'retry') {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.enqueue(q, { body: msg.body, headers: outcome.headers, deliveryCount: 0, redelivered: false, ...(msg.messageId ? { messageId: msg.messageId } : {}) });
      }, outcome.delayMs);
      this.timers.add(t);
    } else if (outcome.kind === 'park' && !q.spec.ephemeral) {
      q.parked.push({ body: msg.body, headers: outcome.headers, reason: outcome.reason });
    }
  }
}
