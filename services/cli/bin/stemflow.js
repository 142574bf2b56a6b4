#!/usr/bin/env node
// The `stemflow` command: TypeScript sources run through tsx, as every stemflow service does.
import { register } from 'tsx/esm/api';

register();
// OpenTelemetry before anything it instruments is imported (as every service starts).
await import('@stemflow/telemetry/register');
const { main } = await import('../src/index.ts');
process.exitCode = await main(process.argv.slice(2));
