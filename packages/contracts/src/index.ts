export * from './job.js';
export * from './events.js';
export * from './topology.js';
export * from './http.js';
export * from './errors.js';
export * from './openapi.js';
export * from './asyncapi.js';
export * from './problems.js';
