/** The gateway's public face: its use cases (the CLI stores and submits through them), the app and the server. */
export type { Deps, JobSource } from './use-cases/jobs.js';
export { createJob, cancelJob, deleteJob, getOwnedJob, jobCreatedEvent, toView } from './use-cases/jobs.js';
export { storeInput, type StoredUpload } from './use-cases/store-input.js';
export { startOrphanSweeper, sweepOrphanUploads } from './use-cases/sweep-orphans.js';
export { EventsHub } from './use-cases/events-hub.js';
export { createApp } from './http/app.js';
export { ownerOf } from './http/auth.js';
export type { GatewayOptions } from './http/context.js';
export { startGateway } from './http/server.js';
