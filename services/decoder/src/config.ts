/** The decoder's configuration: the shared pieces (packages/config) and its own. */
import { blankIsUnset, defineService, infraEnv, int, maxModelRuns, maxUploadBytes, outboundAllowCidrs, port, type ConfigOf } from '@stemflow/config';
import { z } from 'zod';

/** The decoder's own variables: decode limits and deadlines, and imports by URL. */
export const decoderEnv = z.object({
  MAX_DURATION_SEC: z.preprocess(blankIsUnset, int(1).default(60 * 60)),
  MAX_MODEL_RUNS: maxModelRuns,
  /** Deadline of one decode, and how long ffmpeg may produce nothing before it is stopped. */
  DECODE_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1).default(600)),
  DECODE_STALL_SEC: z.preprocess(blankIsUnset, int(1).default(60)),
  /** Inputs given by URL are fetched by the decoder (the job's `importing` stage): whole within this… */
  IMPORT_TIMEOUT_SEC: z.preprocess(blankIsUnset, int(1, 3600).default(120)),
  /** …no larger than uploads may be… */
  MAX_UPLOAD_BYTES: maxUploadBytes,
  /** …from public addresses, and these. */
  OUTBOUND_ALLOW_CIDRS: outboundAllowCidrs,
});

export const decoderConfig = defineService('decoder', infraEnv.extend(decoderEnv.shape).extend({ PORT: port(8001) }));
export type DecoderConfig = ConfigOf<typeof decoderConfig>;
