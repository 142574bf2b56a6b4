export type { EventBus, Handler, Handlers, DeliveryContext, Subscription, BusHealth, RawMessage } from './port.js';
export { newEvent } from './events.js';
export { InMemoryBus } from './memory.js';
export { RabbitBus, type RabbitBusOptions } from './rabbitmq.js';
export { checkHandlers, decode, retryDelay, retryLevel } from './core.js';
export { watchCancellations, type Cancellations } from './cancellations.js';
