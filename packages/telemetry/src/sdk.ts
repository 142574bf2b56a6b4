import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace';

export type Telemetry = { exporting: boolean; shutdown: () => Promise<void>; /** Started before the app's imports (the register module). */ early: boolean };

/** The one SDK of this process (the register module starts it; runService finds it). */
let started: Telemetry | undefined;

/** `.../services/gateway/src/main.ts` → `stemflow-gateway`; the CLI's bin → `stemflow-cli`. */
export function serviceNameFromEntry(entry: string | undefined): string {
  const m = /services[\\/]([a-z-]+)[\\/]/.exec(entry ?? '');
  return `stemflow-${m?.[1] ?? 'node'}`;
}

/**
 * Starts OpenTelemetry for a service. Spans are always created (logs carry trace ids); they are
 * exported over OTLP/HTTP only when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and nothing starts when OTEL_SDK_DISABLED=true.
 * It must run before the instrumented libraries (express, mongoose, http) are imported: processes
 * start it with `--import @stemflow/telemetry/register`; a second call returns the running one.
 */
export function startTelemetry(serviceName: string, env: NodeJS.ProcessEnv = process.env, exporter?: SpanExporter, early = false): Telemetry {
  if (started) return started;
  if (env.OTEL_SDK_DISABLED === 'true') return { exporting: false, shutdown: async () => {}, early: false };
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const traceExporter = exporter ?? (endpoint ? new OTLPTraceExporter() : undefined);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    ...(traceExporter ? { traceExporter } : {}),
    instrumentations: [
      getNodeAutoInstrumentations({
        // Noisy and useless for us; message spans are made by @stemflow/bus for both adapters.
        '@opentelemetry/instrumentation-fs': { enabled: false },
        '@opentelemetry/instrumentation-dns': { enabled: false },
        '@opentelemetry/instrumentation-net': { enabled: false },
        '@opentelemetry/instrumentation-amqplib': { enabled: false },
        // The route's own span is enough: one span per middleware and router layer only buries it.
        '@opentelemetry/instrumentation-express': { ignoreLayersType: ['middleware' as never] },
        '@opentelemetry/instrumentation-router': { enabled: false },
        // Probes and scrapes would be most of the traces.
        '@opentelemetry/instrumentation-http': { ignoreIncomingRequestHook: (req) => /^\/(livez|readyz|metrics|api\/health)\b/.test(req.url ?? '') },
      }),
    ],
  });
  sdk.start();
  started = { exporting: traceExporter !== undefined, shutdown: () => sdk.shutdown(), early };
  return started;
}
