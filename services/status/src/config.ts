/** The status service's configuration: the shared pieces (packages/config; JOB_TTL_HOURS is the job store's) and its port. */
import { defineService, infraEnv, port, type ConfigOf } from '@stemflow/config';

export const statusConfig = defineService('status', infraEnv.extend({ PORT: port(8003) }));
export type StatusConfig = ConfigOf<typeof statusConfig>;
