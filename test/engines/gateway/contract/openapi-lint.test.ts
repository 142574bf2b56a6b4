/**
 * The OpenAPI document passes a linter nobody on the project wrote (Redocly CLI, pinned, its
 * recommended rules): no error, and only the warnings listed here, each with its reason.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { openApiDocument } from '@stemflow/contracts';
import { expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const cli = join(dirname(require.resolve('@redocly/cli/package.json')), (require('@redocly/cli/package.json') as { bin: Record<string, string> }).bin.redocly!);

/** The warning budget: rule and where, with why it stands. */
const ACCEPTED = [
  // Health answers 200 or 503 and takes no input: there is no client error to document.
  { rule: 'operation-4xx-response', operationId: 'getHealth' },
  // The problem catalogue is a constant document: no input, no client error.
  { rule: 'operation-4xx-response', operationId: 'listProblems' },
];

it('lints with no error and only the accepted warnings', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'openapi-lint-'));
  const file = join(dir, 'openapi.json');
  const doc = openApiDocument();
  writeFileSync(file, JSON.stringify(doc, null, 1));
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'lint', file, '--format', 'json'], { cwd: dir, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, maxBuffer: 16 << 20 }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[] };
  const seen = report.problems.map((p) => ({ rule: p.ruleId, severity: p.severity, at: p.location[0]?.pointer ?? '', message: p.message }));
  expect(seen.filter((p) => p.severity === 'error')).toEqual([]);
  const paths = doc.paths as Record<string, Record<string, { operationId?: string }>>;
  const operationAt = (pointer: string) => {
    const [, , path, method] = pointer.split('/');
    return paths[(path ?? '').replace(/~1/g, '/').replace(/~0/g, '~')]?.[method ?? '']?.operationId;
  };
  expect(seen.map((p) => ({ rule: p.rule, operationId: operationAt(p.at) }))).toEqual(ACCEPTED);
});
