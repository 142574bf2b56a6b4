/**
 * Cancellations as every worker instance sees them: each decoder and separator consumes
 * `job.canceled` on a queue of its own (every instance gets every cancel, within one chunk), and
 * the gateway also leaves a marker in the object store, which covers an instance that was down or
 * started after the event. No database on the way: a cancel reaches the work while MongoDB is down.
 */
import { cancelsQueue } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';
import type { EventBus } from './port.js';

export type Cancellations = {
  /** Canceled by an event this instance received, or by the stored marker (checked at most every `markerEveryMs`). */
  isCanceled(jobId: string): Promise<boolean>;
  /** Only what this instance received (no I/O). */
  seen(jobId: string): boolean;
  close(): Promise<void>;
};

const REMEMBER = 10_000;

export async function watchCancellations(bus: EventBus, o: { marked?: (jobId: string) => Promise<boolean>; markerEveryMs?: number } = {}): Promise<Cancellations> {
  const canceled = new Set<string>();
  const remember = (id: string) => {
    canceled.add(id);
    if (canceled.size > REMEMBER) canceled.delete(canceled.values().next().value!);
  };
  const sub = await bus.subscribe(cancelsQueue(uuidv7()), { 'job.canceled': async (e) => remember(e.jobId) });
  const lastMarkerCheck = new Map<string, number>();
  return {
    seen: (id) => canceled.has(id),
    isCanceled: async (id) => {
      if (canceled.has(id)) return true;
      if (!o.marked) return false;
      const now = Date.now();
      if (now - (lastMarkerCheck.get(id) ?? 0) < (o.markerEveryMs ?? 2_000)) return false;
      lastMarkerCheck.set(id, now);
      if (lastMarkerCheck.size > REMEMBER) lastMarkerCheck.delete(lastMarkerCheck.keys().next().value!);
      if (await o.marked(id).catch(() => false)) {
        remember(id);
        return true;
      }
      return false;
    },
    close: () => sub.close(),
  };
}
