import { context, trace, TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { extractTraceContext, injectTraceHeaders } from './context.js';

describe('trace context in message headers', () => {
  it('round-trips a span context through headers, also as Buffers (amqplib)', () => {
    const sc = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED };
    const ctx = trace.setSpanContext(context.active(), sc);
    const headers = injectTraceHeaders({} as Record<string, unknown>, ctx);
    expect(headers.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    for (const h of [headers, { traceparent: Buffer.from(String(headers.traceparent)) }]) {
      const back = trace.getSpanContext(extractTraceContext(h));
      expect(back?.traceId).toBe(sc.traceId);
      expect(back?.spanId).toBe(sc.spanId);
      expect(back?.isRemote).toBe(true);
    }
  });

  it('no headers → the current context', () => {
    expect(trace.getSpanContext(extractTraceContext(undefined))).toBeUndefined();
    expect(trace.getSpanContext(extractTraceContext({ traceparent: 'garbage' }))).toBeUndefined();
  });
});
