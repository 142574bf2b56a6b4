import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openApiDocument } from './openapi.js';
import { PROBLEMS, PROBLEM_CODES } from './problems.js';
import { problemTables } from '../scripts/problem-tables.js';

const committed = fileURLToPath(new URL('../../../docs/openapi.yaml', import.meta.url));

describe('OpenAPI document', () => {
  const doc = openApiDocument() as unknown as { paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: { allOf?: { properties?: { code?: { enum?: string[] } } }[] } }> }> }>> };

  it('each error response lists codes of the catalogue, under the status the catalogue gives them', () => {
    const seen = new Set<string>();
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const [status, r] of Object.entries(op.responses ?? {})) {
          const codes = r.content?.['application/problem+json']?.schema?.allOf?.[1]?.properties?.code?.enum ?? [];
          for (const c of codes) {
            expect(PROBLEMS[c as keyof typeof PROBLEMS]?.status, c).toBe(Number(status));
            seen.add(c);
          }
        }
      }
    }
    // Every code but the server's own refusals (before routing) is documented on some operation.
    expect(PROBLEM_CODES.filter((c) => !seen.has(c)).sort()).toEqual(['INTERNAL', 'METHOD_NOT_ALLOWED', 'TOO_MANY_CONNECTIONS'].sort());
  });

  it('docs/api.md shows the current error catalogue (run `pnpm docs:generate`)', () => {
    for (const [name, table] of Object.entries(problemTables())) {
      const text = readFileSync(fileURLToPath(new URL(`../../../${name}`, import.meta.url)), 'utf8');
      expect(text.includes(`<!-- problems:start -->\n${table}<!-- problems:end -->`), name).toBe(true);
    }
  });

  it('docs/openapi.yaml is the generated document (run `pnpm docs:generate` after changing a contract)', () => {
    expect(parse(readFileSync(committed, 'utf8'))).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });
});
