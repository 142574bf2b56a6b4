export { createApp, ownerOf, type GatewayOptions } from './entry-points/http.js';
export type { Deps } from './use-cases/jobs.js';
