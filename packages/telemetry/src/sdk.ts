import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace';

export type Telemetry = { exporting: boolean; shutdown: () => Promise<void> };

/**
 * Starts OpenTelemetry for a service. Spans are always created (logs carry trace ids); they are
 * exported over OTLP/HTTP only when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and nothing starts when OTEL_SDK_DISABLED=true.
 * Call it before the instrumented libraries (express, mongoose, http) are imported.
 */
export function startTelemetry(serviceName: string, env: NodeJS.ProcessEnv = process.env, exporter?: SpanExporter): Telemetry {
  if (env.OTEL_SDK_DISABLED === 'true') return { exporting: false, shutdown: async () => {} };
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
      }),
    ],
  });
  sdk.start();
  return { exporting: traceExporter !== undefined, shutdown: () => sdk.shutdown() };
}
