import type { EventName, EventOf, QueueSpec } from '@stemflow/contracts';
import type { Logger } from '@stemflow/telemetry';

export type DeliveryContext = {
  /** 1 on the first handler attempt, 2 on the first retry, … */
  attempt: number;
  /** Whether the broker delivered this message before (a consumer died holding it). */
  redelivered: boolean;
  queue: string;
  /** Logger with jobId, eventId and trace ids. */
  log: Logger;
};

export type Handler<N extends EventName> = (event: EventOf<N>, ctx: DeliveryContext) => Promise<void>;
/** One handler per event the queue receives: no more, no less (checked at subscribe). */
export type Handlers = { [N in EventName]?: Handler<N> };

/**
 * `close` stops taking messages, waits for the handlers in flight (up to `graceMs`, where the
 * adapter has to give up at some point: the broker's channel returns their messages), then ends.
 */
export type Subscription = { close: (graceMs?: number) => Promise<void> };

/** `sessions`: how many times the bus has connected (it grows by one at each reconnect). */
export type BusHealth = { ok: boolean; detail?: string; sessions?: number };

export interface EventBus {
  /** Resolves once the broker confirmed the event is stored; rejects (retryable) otherwise. */
  publish<N extends EventName>(event: EventOf<N>): Promise<void>;
  /** Consumes a topology queue; a message is acked only after its handler resolved. */
  subscribe(spec: QueueSpec, handlers: Handlers): Promise<Subscription>;
  health(): Promise<BusHealth>;
  /** Messages waiting in a queue, not yet delivered (metrics, tests). */
  depth(queue: string): Promise<number>;
  /** Stops consuming, lets in-flight handlers finish (up to a grace period), then disconnects. */
  close(): Promise<void>;
}

/** Raw message as both adapters carry it; the body is JSON bytes as on the wire. */
export type RawMessage = {
  body: Buffer;
  headers: Record<string, unknown>;
  messageId?: string;
  /** Broker-side delivery count (quorum queues), 0 on the first delivery. */
  deliveryCount: number;
  redelivered: boolean;
};
