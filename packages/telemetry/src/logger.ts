import { trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs (pino) for a service. Every line logged inside a span carries its trace_id and
 * span_id, so a log line leads to its trace in Jaeger; add `jobId` with `logger.child({ jobId })`.
 */
export function createLogger(service: string, level: string = process.env.LOG_LEVEL || 'info', destination?: NodeJS.WritableStream): Logger {
  const opts = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      return ctx && trace.isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    },
  };
  // A CLI keeps stdout for its own output: it passes stderr.
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}
