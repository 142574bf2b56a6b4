/**
 * RabbitMQ adapter (amqplib). Topology from @stemflow/contracts: a durable topic exchange, one quorum
 * queue per consumer with fixed-delay retry queues that dead-letter back into it, a parking queue
 * (.dlq) behind a dead-letter exchange, and x-delivery-limit as a backstop against crash loops.
 * Publishes go through a confirm channel and resolve only on the broker's ack; consumers ack after
 * the handler (and any retry/park publish) is done. The connection recovers with full-jitter
 * backoff and re-declares the topology and every consumer.
 */
import {
  DEAD_LETTER_EXCHANGE,
  EXCHANGE,
  HEADERS,
  MAX_DELIVERIES,
  QUEUES,
  parkingQueueName,
  retryQueueName,
  unavailable,
  type AnyEvent,
  type EventName,
  type EventOf,
  type QueueSpec,
} from '@stemflow/contracts';
import { createLogger, type Logger } from '@stemflow/telemetry';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options, type RecoveringChannelModel } from 'amqplib';
import { checkHandlers, headerString, processMessage, retryLevel, tracedPublish, type Outcome } from './core.js';
import type { BusHealth, EventBus, Handlers, RawMessage, Subscription } from './port.js';

export type RabbitBusOptions = {
  url: string;
  /** The connection's name as the broker shows it (management UI, rabbitmqctl list_connections): the service. */
  name?: string;
  log?: Logger;
  /** Queues declared on every (re)connect so no event is unroutable; default: the whole topology. */
  queues?: QueueSpec[];
  /** How long publish keeps trying (reconnects included) before it rejects. */
  publishTimeoutMs?: number;
  /** How long close() waits for in-flight handlers before returning their messages. */
  closeGraceMs?: number;
  /** Reconnect backoff cap. */
  maxReconnectDelayMs?: number;
};

type Sub = {
  spec: QueueSpec;
  handlers: Handlers;
  channel?: Channel;
  inFlight: number;
  closing: boolean;
  idle: Set<() => void>;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RabbitBus implements EventBus {
  private conn!: RecoveringChannelModel;
  private pub: ConfirmChannel | undefined;
  private waiters = new Set<() => void>();
  private readonly subs = new Set<Sub>();
  private readonly declared = new Map<string, QueueSpec>();
  private readonly running = new Map<string, Promise<Outcome>>();
  private readonly unsettled = new Map<string, Outcome>();
  private readonly settledElsewhere = new Map<string, true>();
  private readonly log: Logger;
  private connected = false;
  /** Connections made so far: a consumer of exclusive queues knows from it that it reconnected. */
  private sessions = 0;
  private lastError: string | undefined;
  private closing = false;

  private constructor(private readonly opts: RabbitBusOptions) {
    this.log = opts.log ?? createLogger('bus');
    for (const q of opts.queues ?? Object.values(QUEUES)) this.declared.set(q.name, q);
  }

  /** Connects (retrying with backoff until `connectTimeoutMs`) and declares the topology. */
  static async connect(opts: RabbitBusOptions & { connectTimeoutMs?: number }): Promise<RabbitBus> {
    const bus = new RabbitBus(opts);
    const cap = opts.maxReconnectDelayMs ?? 5_000;
    bus.conn = await connect(opts.url, {
      // Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms to every small publish and delivery.
      noDelay: true,
      ...(opts.name ? { clientProperties: { connection_name: opts.name } } : {}),
      recovery: {
        waitForConnect: false,
        maxRetries: Infinity,
        // Full jitter: spreads reconnecting services out after a broker restart.
        calculateDelay: (attempt) => Math.random() * Math.min(cap, 100 * 2 ** attempt),
        setup: (model: ChannelModel) => bus.setup(model),
      },
    });
    bus.conn.on('disconnect', (err: Error) => {
      bus.connected = false;
      bus.pub = undefined;
      bus.lastError = err.message;
      if (!bus.closing) bus.log.warn({ err: err.message }, 'lost the broker connection, reconnecting');
    });
    bus.conn.on('connect-failed', (err: Error) => {
      bus.lastError = err.message;
    });
    bus.conn.on('error', (err: Error) => {
      bus.lastError = err.message;
    });
    const timeout = opts.connectTimeoutMs ?? 30_000;
    const ok = await Promise.race([bus.conn.waitForConnect().then(() => true), sleep(timeout).then(() => false)]);
    if (!ok) {
      await bus.conn.close().catch(() => {});
      throw unavailable(`message broker at ${redact(opts.url)} (${bus.lastError ?? 'no answer'} after ${timeout} ms)`);
    }
    await bus.waitForChannel(Date.now() + timeout);
    return bus;
  }

  /** Runs after every (re)connect: topology, publisher channel, consumers. */
  private async setup(model: ChannelModel): Promise<void> {
    this.sessions++;
    const ch = await model.createConfirmChannel();
    ch.on('error', (err: Error) => this.log.warn({ err: err.message }, 'publisher channel error'));
    ch.on('close', () => {
      if (this.pub === ch) this.pub = undefined;
    });
    await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
    await ch.assertExchange(DEAD_LETTER_EXCHANGE, 'direct', { durable: true });
    for (const spec of this.declared.values()) await assertQueue(ch, spec);
    this.pub = ch;
    this.connected = true;
    this.lastError = undefined;
    for (const w of this.waiters) w();
    this.waiters.clear();
    for (const sub of this.subs) if (!sub.closing) await this.consume(model, sub);
    this.log.info({ queues: [...this.declared.keys()] }, 'connected to the broker');
  }

  async declare(spec: QueueSpec): Promise<void> {
    this.declared.set(spec.name, spec);
    const ch = await this.waitForChannel(Date.now() + (this.opts.publishTimeoutMs ?? 15_000));
    await assertQueue(ch, spec);
  }

  private async waitForChannel(deadline: number): Promise<ConfirmChannel> {
    while (!this.pub) {
      if (this.closing) throw new Error('bus is closed');
      const left = deadline - Date.now();
      if (left <= 0) throw unavailable(`message broker (${this.lastError ?? 'not connected'})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 250));
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.waiters.add(done);
      });
    }
    return this.pub;
  }

  /**
   * Publishes and waits for the broker's confirm, retrying over reconnects until the deadline.
   * A confirm lost with its channel can mean a duplicate; consumers are idempotent by event id.
   */
  private async confirmPublish(exchange: string, key: string, body: Buffer, options: Options.Publish): Promise<void> {
    const deadline = Date.now() + (this.opts.publishTimeoutMs ?? 15_000);
    let lastErr: unknown;
    for (;;) {
      const ch = await this.waitForChannel(deadline).catch((err: unknown) => {
        throw lastErr ? unavailable(`message broker (${String((lastErr as Error).message ?? lastErr)})`) : err;
      });
      try {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('no confirm from the broker in time')), Math.max(1, deadline - Date.now()));
          try {
            ch.publish(exchange, key, body, options, (err) => {
              clearTimeout(t);
              if (err) reject(err instanceof Error ? err : new Error(String(err)));
              else resolve();
            });
          } catch (err) {
            clearTimeout(t);
            reject(err);
          }
        });
        return;
      } catch (err) {
        lastErr = err;
        if (Date.now() >= deadline) throw unavailable(`message broker (${(err as Error).message})`, err);
        await sleep(50);
      }
    }
  }

  async publish<N extends EventName>(event: EventOf<N>): Promise<void> {
    await tracedPublish(event as AnyEvent, (body, headers) =>
      this.confirmPublish(EXCHANGE, event.type, body, {
        persistent: true,
        contentType: 'application/json',
        messageId: event.id,
        type: event.type,
        timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
        headers,
      }),
    );
  }

  /** Publishes raw bytes to the exchange (tests of bad input from other producers). */
  async publishRaw(routingKey: string, body: Buffer, headers: Record<string, unknown> = {}): Promise<void> {
    await this.confirmPublish(EXCHANGE, routingKey, body, { persistent: true, headers });
  }

  async subscribe(spec: QueueSpec, handlers: Handlers): Promise<Subscription> {
    checkHandlers(spec, handlers);
    if (!this.declared.has(spec.name)) await this.declare(spec);
    const sub: Sub = { spec, handlers, inFlight: 0, closing: false, idle: new Set() };
    this.subs.add(sub);
    if (this.connected) {
      try {
        // The recovering model creates channels on its current connection.
        await this.consume(this.conn as unknown as ChannelModel, sub);
      } catch (err) {
        // Lost the connection meanwhile: setup() starts this consumer again on reconnect.
        if (this.connected && this.pub) throw err;
        this.log.warn({ err: (err as Error).message, queue: spec.name }, 'consumer starts after reconnect');
      }
    }
    return { close: (graceMs) => this.stopConsumer(sub, graceMs) };
  }

  private async consume(model: ChannelModel, sub: Sub): Promise<void> {
    const ch = await model.createChannel();
    ch.on('error', (err: Error) => this.log.warn({ err: err.message, queue: sub.spec.name }, 'consumer channel error'));
    ch.on('close', () => {
      if (sub.channel !== ch) return;
      sub.channel = undefined;
      // The broker closed this consumer's channel while the connection lives on (a consumer
      // timeout, a queue deleted and declared again…): consume again, or the service would
      // silently stop taking work. A lost connection is setup()'s to recover.
      setTimeout(() => {
        if (sub.closing || this.closing || !this.connected || sub.channel) return;
        this.log.warn({ queue: sub.spec.name }, 'the broker closed the consumer channel: consuming again');
        this.consume(model, sub).catch((err: Error) => this.log.warn({ err: err.message, queue: sub.spec.name }, 'could not consume again; will on reconnect'));
      }, 1000).unref();
    });
    await ch.prefetch(sub.spec.prefetch);
    sub.channel = ch;
    await ch.consume(sub.spec.name, (msg) => {
      if (msg) void this.handle(sub, ch, msg);
    });
  }

  /**
   * A connection lost while a handler runs gets its message redelivered, possibly to this same
   * process while the first handler is still at work (or done, its ack lost with the channel).
   * Handling it again would repeat the work and its events (a second job.completed): instead the
   * redelivery settles with the first handler's outcome. Keyed by queue, message id and retry.
   */
  private async outcomeOf(sub: Sub, raw: RawMessage): Promise<{ outcome: Outcome; key: string | undefined }> {
    const key = raw.messageId ? `${sub.spec.name}|${raw.messageId}|${headerString(raw.headers[HEADERS.retryCount]) ?? 0}` : undefined;
    if (key) {
      const unsettled = this.unsettled.get(key);
      if (unsettled) {
        this.unsettled.delete(key);
        this.log.info({ queue: sub.spec.name, messageId: raw.messageId }, 'redelivered after its handler finished: settling with that outcome');
        return { outcome: unsettled, key };
      }
      const running = this.running.get(key);
      if (running) {
        this.log.info({ queue: sub.spec.name, messageId: raw.messageId }, 'redelivered while its handler still runs here: waiting for it');
        const outcome = await running.catch(() => undefined);
        if (outcome) {
          remember(this.settledElsewhere, key, true);
          return { outcome, key };
        }
      }
    }
    const p = processMessage(sub.spec, sub.handlers, raw, { bus: this, log: this.log });
    if (key) this.running.set(key, p);
    try {
      return { outcome: await p, key };
    } finally {
      if (key && this.running.get(key) === p) this.running.delete(key);
    }
  }

  private async handle(sub: Sub, ch: Channel, msg: ConsumeMessage): Promise<void> {
    // Stopping: leave it unacked; closing the channel hands it back to the broker.
    if (sub.closing) return;
    sub.inFlight++;
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const raw: RawMessage = {
      body: msg.content,
      headers,
      ...(msg.properties.messageId ? { messageId: String(msg.properties.messageId) } : {}),
      deliveryCount: Number(headers[HEADERS.deliveryCount] ?? 0) || 0,
      redelivered: msg.fields.redelivered,
    };
    let computed: { outcome: Outcome; key: string | undefined } | undefined;
    try {
      computed = await this.outcomeOf(sub, raw);
      const { outcome } = computed;
      const props = {
        persistent: true,
        contentType: msg.properties.contentType ?? 'application/json',
        ...(msg.properties.messageId ? { messageId: msg.properties.messageId } : {}),
        ...(msg.properties.type ? { type: msg.properties.type } : {}),
      };
      if (outcome.kind === 'retry') {
        const level = retryLevel(sub.spec, Number(outcome.headers[HEADERS.retryCount]));
        await this.confirmPublish('', retryQueueName(sub.spec.name, level), msg.content, { ...props, headers: outcome.headers, expiration: String(outcome.delayMs) });
      } else if (outcome.kind === 'park') {
        await this.confirmPublish(DEAD_LETTER_EXCHANGE, sub.spec.name, msg.content, {
          ...props,
          headers: { ...outcome.headers, [HEADERS.parkReason]: outcome.reason.slice(0, 2000), [HEADERS.parkedFrom]: sub.spec.name },
        });
      }
      ch.ack(msg);
    } catch (err) {
      // Not settled (broker gone mid-way, or publishing the outcome failed): give it back, and
      // keep the outcome for its redelivery unless another delivery already settled it.
      if (computed?.key && !this.settledElsewhere.has(computed.key)) remember(this.unsettled, computed.key, computed.outcome);
      this.log.warn({ err: (err as Error).message, queue: sub.spec.name }, 'delivery not settled, returning it to the queue');
      try {
        ch.nack(msg, false, true);
      } catch {
        /* channel gone: the broker redelivers by itself */
      }
    } finally {
      sub.inFlight--;
      if (sub.inFlight === 0) {
        for (const r of sub.idle) r();
        sub.idle.clear();
      }
    }
  }

  /**
   * Finishes what is being handled, then closes the channel, which returns every other unacked
   * message. The consumer is not cancelled first: with single-active-consumer that would make a
   * standby replica active while this one still writes, and two writers at once is what the
   * single active consumer is there to prevent.
   */
  private async stopConsumer(sub: Sub, graceMs = this.opts.closeGraceMs ?? 30_000): Promise<void> {
    sub.closing = true;
    this.subs.delete(sub);
    if (sub.inFlight > 0) {
      await Promise.race([new Promise<void>((r) => sub.idle.add(r)), sleep(graceMs)]);
    }
    // Closing the channel returns any unacked message to the queue.
    await sub.channel?.close().catch(() => {});
  }

  async health(): Promise<BusHealth> {
    if (this.connected && this.pub) return { ok: true, detail: `connected to ${redact(this.opts.url)}`, sessions: this.sessions };
    return { ok: false, detail: `not connected to ${redact(this.opts.url)}: ${this.lastError ?? 'connecting'}`, sessions: this.sessions };
  }

  /** Messages waiting in a queue (metrics, tests). */
  async depth(queue: string): Promise<number> {
    const ch = await this.waitForChannel(Date.now() + 5_000);
    return (await ch.checkQueue(queue)).messageCount;
  }

  async close(): Promise<void> {
    await Promise.all([...this.subs].map((s) => this.stopConsumer(s)));
    this.closing = true;
    await this.conn.close().catch(() => {});
  }
}

async function assertQueue(ch: Channel, spec: QueueSpec): Promise<void> {
  if (spec.ephemeral) {
    // This process's own: gone with its connection, declared again (empty) on reconnect.
    await ch.assertQueue(spec.name, { exclusive: true, autoDelete: true, durable: false });
    for (const b of spec.bindings) await ch.bindQueue(spec.name, EXCHANGE, b);
    return;
  }
  await ch.assertQueue(spec.name, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': MAX_DELIVERIES + 2,
      'x-dead-letter-exchange': DEAD_LETTER_EXCHANGE,
      'x-dead-letter-routing-key': spec.name,
      ...(spec.singleActiveConsumer ? { 'x-single-active-consumer': true } : {}),
    },
  });
  for (const b of spec.bindings) await ch.bindQueue(spec.name, EXCHANGE, b);
  for (const delay of new Set(spec.retry.delaysMs)) {
    await ch.assertQueue(retryQueueName(spec.name, delay), {
      durable: true,
      arguments: { 'x-message-ttl': delay, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': spec.name },
    });
  }
  const dlq = parkingQueueName(spec.name);
  await ch.assertQueue(dlq, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.bindQueue(dlq, DEAD_LETTER_EXCHANGE, spec.name);
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, '//');

/** Adds to a map that keeps its newest 1,000 entries. */
function remember<V>(m: Map<string, V>, key: string, value: V) {
  m.set(key, value);
  if (m.size > 1000) m.delete(m.keys().next().value!);
}
