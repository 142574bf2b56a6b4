import {
  type Attributes,
  type Context,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type TextMapGetter,
} from '@opentelemetry/api';
import { randomBytes } from 'node:crypto';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * W3C trace context in message headers. The propagator is explicit (not the global one) so the
 * headers are written and read the same way whether or not the SDK was started.
 */
const w3c = new W3CTraceContextPropagator();

type Headers = Record<string, unknown>;
const getter: TextMapGetter<Headers> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    if (Buffer.isBuffer(v)) return v.toString('utf8');
    return typeof v === 'string' ? v : undefined;
  },
};

/**
 * Adds `traceparent` (and `tracestate`) for the active (or given) context to the headers. With no
 * valid span to continue (no trace yet, or the SDK disabled, when the W3C propagator writes
 * nothing) it starts a fresh trace: every message carries a valid `traceparent`, as documented.
 */
export function injectTraceHeaders<H extends Headers>(headers: H, ctx: Context = context.active()): H {
  w3c.inject(ctx, headers, { set: (c, k, v) => ((c as Headers)[k] = v) });
  propagation.inject(ctx, headers);
  if (typeof (headers as Headers).traceparent !== 'string') (headers as Headers).traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
  return headers;
}

/** The remote context carried by the headers, to parent a consumer span. */
export const extractTraceContext = (headers: Headers | undefined, ctx: Context = context.active()): Context =>
  headers ? w3c.extract(ctx, headers, getter) : ctx;

export const tracer = () => trace.getTracer('stemflow');

/** Runs fn in a span that ends (with its error recorded) when fn settles. */
export async function withSpan<T>(
  name: string,
  opts: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  return tracer().startActiveSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes: opts.attributes ?? {} }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

export const currentTraceId = (): string | undefined => trace.getActiveSpan()?.spanContext().traceId;
export { SpanKind };
