import { QUEUES } from '@stemflow/contracts';
import { RabbitBus } from '@stemflow/bus';
import type { BusHarness, Parked } from '@stemflow/bus/contract';
import { HEADERS, parkingQueueName, type QueueSpec } from '@stemflow/contracts';
import { connect, type Channel } from 'amqplib';
import { engineEnv } from './env.js';

/** A RabbitBus on the real broker, declaring only the queues a test asks for. */
export async function rabbitHarness(opts: { publishTimeoutMs?: number } = {}): Promise<BusHarness & { bus: RabbitBus }> {
  const bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL'), queues: [], connectTimeoutMs: 10_000, ...opts });
  const declared: QueueSpec[] = [];
  const parked = new Map<string, Parked[]>();
  return {
    bus,
    declare: async (spec) => {
      declared.push(spec);
      await bus.declare(spec);
    },
    publishRaw: (key, body) => bus.publishRaw(key, body),
    parked: async (queue) => {
      const list = parked.get(queue) ?? [];
      parked.set(queue, list);
      await withChannel(async (ch) => {
        for (;;) {
          const m = await ch.get(parkingQueueName(queue), { noAck: true });
          if (!m) break;
          const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
          list.push({ body: m.content, headers, reason: String(headers[HEADERS.parkReason] ?? '') });
        }
      });
      return [...list];
    },
    close: async () => {
      await bus.close();
      await withChannel(async (ch) => {
        for (const spec of declared) await deleteQueues(ch, spec);
      });
    },
  };
}

/** A short-lived connection of its own (it outlives broker restarts that a shared one would not). */
export async function withChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
  const conn = await connect(engineEnv('AMQP_URL'));
  try {
    return await fn(await conn.createChannel());
  } finally {
    await conn.close().catch(() => {});
  }
}

export async function deleteQueues(ch: Channel, spec: QueueSpec) {
  await ch.deleteQueue(spec.name).catch(() => {});
  await ch.deleteQueue(parkingQueueName(spec.name)).catch(() => {});
  for (const d of new Set(spec.retry.delaysMs)) await ch.deleteQueue(`${spec.name}.retry.${d}ms`).catch(() => {});
}

/**
 * Empties stemflow's queues and their parking queues, leaving no events of earlier tests' jobs.
 * One channel per queue: purging a queue that is not declared yet (this file run alone) closes
 * its channel, and is nothing to purge.
 */
export async function purgeStemflowQueues(): Promise<void> {
  for (const q of Object.values(QUEUES)) {
    for (const name of [q.name, `${q.name}.dlq`]) {
      await withChannel((ch) => {
        ch.on('error', () => {});
        return ch.purgeQueue(name);
      }).catch(() => {});
    }
  }
}
