/** The error catalogue as the docs show it: by status in the README, whole in docs/api.md. */
import { JOB_ERRORS, PROBLEMS, PROBLEM_CODES } from '../src/problems.js';

export function problemTables(): Record<'README.md' | 'docs/api.md', string> {
  const byStatus = new Map<number, string[]>();
  for (const c of PROBLEM_CODES) byStatus.set(PROBLEMS[c].status, [...(byStatus.get(PROBLEMS[c].status) ?? []), c]);
  const compact = [...byStatus]
    .sort(([a], [b]) => a - b)
    .map(([status, codes]) => `- **${status}**: ${codes.map((c) => `\`${c}\``).join(', ')}`)
    .join('\n');
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
  return { 'README.md': `${compact}\n`, 'docs/api.md': `${full}\n` };
}
