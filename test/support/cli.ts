import { spawn } from 'node:child_process';
import { MALLOC_TUNABLES, MODEL_NODE_OPTIONS } from '@stemflow/models';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../services/cli/bin/stemflow.js', import.meta.url));

/** Runs the `stemflow` command as a user would (its bin script), collecting its output. */
export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MODEL_NODE_OPTIONS, bin, ...args], { cwd: opts.cwd, env: { ...process.env, LOG_LEVEL: '', GLIBC_TUNABLES: MALLOC_TUNABLES, ...opts.env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
