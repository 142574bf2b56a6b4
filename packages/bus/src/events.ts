import { EVENTS, type EventName, type EventOf, type PayloadOf } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';

/** Builds a valid event envelope (UUID v7 id, now as occurredAt); throws if the payload is wrong. */
export function newEvent<N extends EventName>(type: N, jobId: string, payload: PayloadOf<N>, occurredAt = new Date()): EventOf<N> {
  return EVENTS[type].parse({
    id: uuidv7(),
    type,
    version: 1,
    jobId,
    occurredAt: occurredAt.toISOString(),
    payload,
  }) as EventOf<N>;
}
