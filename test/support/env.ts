/** Engine endpoints for real-engine tests; `pnpm test` starts the engines and sets these. */
export function engineEnv(name: 'AMQP_URL' | 'S3_ENDPOINT' | 'S3_ACCESS_KEY' | 'S3_SECRET_KEY' | 'DATABASE_URL' | 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'JAEGER_QUERY_URL' | 'STEMFLOW_RUN' | 'STEMFLOW_CONSUMER_PYTHON' | 'STEMFLOW_SCHEMATHESIS'): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run real-engine tests through "pnpm test", which starts the engines`);
  return v;
}

/** A name unique to this test run, for queues, buckets, collections. */
export const unique = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;

/** `what` names the condition in the timeout's message; a function is asked then (a log as it is at the end, not at the start). */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, opts: { timeoutMs?: number; intervalMs?: number; what?: string | (() => string) } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${(typeof opts.what === 'function' ? opts.what() : opts.what) ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
