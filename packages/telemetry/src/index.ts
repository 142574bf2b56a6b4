export { startTelemetry, serviceNameFromEntry, type Telemetry } from './sdk.js';
export { createLogger, type Logger } from './logger.js';
export { injectTraceHeaders, extractTraceContext, tracer, withSpan, currentTraceId, SpanKind } from './context.js';
export {
  metricsRegistry,
  renderMetrics,
  registerQueueDepth,
  registerJobsByStatus,
  stageDuration,
  separationRealtimeFactor,
  modelRunDuration,
  separatorEngines,
  messagesSettled,
  httpRequestDuration,
  uploadedBytes,
  readModelReads,
  webhookAttempts,
  limitRefusals,
  sseStreams,
  timeStage,
} from './metrics.js';
