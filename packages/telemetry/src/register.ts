/**
 * `node --import tsx --import @stemflow/telemetry/register <main>`: OpenTelemetry started before
 * the application's first import. Auto-instrumentation patches modules as they load (express,
 * http, mongodb, mongoose, the S3 client's http requests); started later, from inside the service,
 * it found them already loaded and patched nothing — traces held only stemflow's own spans.
 *
 * ES modules are patched through import-in-the-middle's loader hook, registered here and told which
 * modules the instrumentations want (only those are wrapped). The service name comes from
 * OTEL_SERVICE_NAME, else from the entry point (`services/<name>/src/main.ts` → `stemflow-<name>`).
 * Worker threads (the model's) start nothing.
 */
import { createRequire, register, syncBuiltinESMExports } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { createAddHookMessageChannel } from 'import-in-the-middle';
import { serviceNameFromEntry, startTelemetry } from './sdk.js';

if (isMainThread && process.env.OTEL_SDK_DISABLED !== 'true') {
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  startTelemetry(serviceNameFromEntry(process.argv[1]), process.env, undefined, true);
  await waitForAllMessagesAcknowledged();
  // Node's core modules are patched through require: load http and https that way now, then copy
  // the patched functions into their ES-module namespaces, which otherwise keep whatever they held
  // when first imported (the S3 client's `import * as http from 'http'` made no spans).
  const require = createRequire(import.meta.url);
  require('node:http');
  require('node:https');
  syncBuiltinESMExports();
}
