/** The client's types are the OpenAPI document's: api.ts is what the generator makes from it now. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { apiTypes } from '../scripts/api-types.js';

it('api.ts is generated from the current document (run `pnpm --filter @stemflow/client generate` after changing the contract)', { timeout: 30_000 }, async () => {
  const committed = readFileSync(new URL('./api.ts', import.meta.url), 'utf8');
  expect(committed === (await apiTypes())).toBe(true);
});
