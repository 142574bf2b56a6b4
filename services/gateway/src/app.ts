export { createApp, ownerOf, type GatewayOptions } from './entry-points/http.js';
export type { Deps } from './use-cases/jobs.js';
export { createJob, cancelJob, toView } from './use-cases/jobs.js';
export { storeInput, type StoredUpload } from './entry-points/upload-engine.js';
export { startOrphanSweeper, sweepOrphanUploads } from './use-cases/sweep-orphans.js';
export { startGateway } from './entry-points/server.js';
export { EventsHub } from './entry-points/events-hub.js';
