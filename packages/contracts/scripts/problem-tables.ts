/** The error catalogue as docs/api.md shows it: every problem code, then every job error code. */
import { JOB_ERRORS, PROBLEMS, PROBLEM_CODES } from '../src/problems.js';

export function problemTables(): Record<'docs/api.md', string> {
  const full = [
    '| code | status | title |',
    '|---|---|---|',
    ...PROBLEM_CODES.map((c) => `| \`${c}\` | ${PROBLEMS[c].status} | ${PROBLEMS[c].title} |`),
    '',
    'A failed job\'s `error_code`:',
    '',
    '| code | what failed |',
    '|---|---|',
    ...Object.entries(JOB_ERRORS).map(([c, t]) => `| \`${c}\` | ${t} |`),
  ].join('\n');
  return { 'docs/api.md': `${full}\n` };
}
