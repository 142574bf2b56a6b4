/**
 * `pnpm --filter @stemflow/client generate`: writes src/api.ts, the API's types, from the OpenAPI
 * document the gateway serves (made from the contracts). A test fails when the file is not what
 * this script would write now, so the client cannot drift from the server.
 */
import { writeFileSync } from 'node:fs';
import { apiTypes } from './api-types.js';

const out = new URL('../src/api.ts', import.meta.url);
writeFileSync(out, await apiTypes());
process.stdout.write(`wrote ${out.pathname}\n`);
