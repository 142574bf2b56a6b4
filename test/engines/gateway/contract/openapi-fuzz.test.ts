/**
 * The API keeps the contract it prints: schemathesis (pinned, infra/tools) generates requests from
 * /api/openapi.json and checks every answer against it — status codes, headers, content types,
 * bodies, schema-valid requests accepted and invalid ones refused, links followed from a created
 * job (stateful), a deleted job staying gone. The server is the whole pipeline on the tiny model,
 * so generated submits make jobs that complete in a second and every route sees real ones.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { engineEnv } from '../../../support/env.js';
import { tinyStack, type TinyStack } from '../../../support/tiny-stack.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The fuzzer's time budget (its phases repeat until it is spent). */
const BUDGET_SEC = 120;
const KEY = 'fuzz-key';

let stack: TinyStack;
beforeAll(async () => {
  stack = await tinyStack({ apiKeys: [KEY, 'other-key'], webhookSecret: 'a-webhook-secret-of-32-characters!', importing: { timeoutMs: 3000 } });
});
afterAll(async () => {
  await stack?.close();
});

it(`schemathesis finds no answer that breaks the OpenAPI document (all checks, stateful, ${BUDGET_SEC} s)`, { timeout: (BUDGET_SEC + 90) * 1000 }, async () => {
  const args = ['--config-file', 'schemathesis.toml', 'run', `${stack.url}/api/openapi.json`, '--checks', 'all', '--max-time', String(BUDGET_SEC), '--seed', '20261206', '--no-color'];
  const out: string[] = [];
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(engineEnv('STEMFLOW_SCHEMATHESIS'), args, {
      cwd: here,
      env: { ...process.env, STEMFLOW_FUZZ_KEY: KEY, PYTHONPATH: here, SCHEMATHESIS_HOOKS: 'fuzz_hooks', PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout.on('data', (d: Buffer) => out.push(d.toString()));
    p.stderr.on('data', (d: Buffer) => out.push(d.toString()));
    p.on('close', resolve);
  });
  const report = out.join('');
  const summary = report.slice(report.lastIndexOf('SUMMARY'));
  process.stdout.write(`schemathesis: ${summary.split('\n').filter((l) => /generated|failures|passed|Tested/.test(l)).join(' | ')}\n`);
  expect(code, report.slice(-20_000)).toBe(0);
  expect(summary).toMatch(/Tested: 15/);
});
