import { busContract } from './contract.js';
import { InMemoryBus } from './memory.js';

busContract('in-process', async () => {
  const bus = new InMemoryBus({ queues: [] });
  return {
    bus,
    declare: async (spec) => bus.declare(spec),
    publishRaw: async (key, body) => bus.publishRaw(key, body),
    parked: async (q) => [...bus.parked(q)],
    close: () => bus.close(),
  };
});
