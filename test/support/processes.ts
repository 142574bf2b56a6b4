import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { MALLOC_TUNABLES, MODEL_NODE_OPTIONS } from '@stemflow/models';
import { eventually } from './env.js';

export type Service = 'gateway' | 'decoder' | 'separator' | 'status' | 'webhooks' | 'all-in-one';

/** A stemflow service as its own process, started the way `pnpm --filter @stemflow/<name> start` does. */
export class ServiceProcess {
  proc: ChildProcess | undefined;
  log = '';
  constructor(readonly name: Service, readonly env: Record<string, string>, readonly port: number) {}

  async start(): Promise<void> {
    // As the start scripts do: OpenTelemetry registered before the service's first import.
    const model = this.name === 'separator' || this.name === 'all-in-one';
    this.proc = spawn(process.execPath, [...(model ? [MODEL_NODE_OPTIONS] : []), '--import', 'tsx', '--import', './packages/telemetry/src/register.ts', `services/${this.name}/src/main.ts`], {
      // As the start scripts do for the processes that run the model.
      env: { ...process.env, ...(model ? { GLIBC_TUNABLES: MALLOC_TUNABLES } : {}), ...this.env, PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // STEMFLOW_TEST_LOG_DIR=<dir>: every service's output also lands in <dir>/<name>-<port>.log.
    const file = process.env.STEMFLOW_TEST_LOG_DIR ? createWriteStream(join(process.env.STEMFLOW_TEST_LOG_DIR, `${this.name}-${this.port}.log`), { flags: 'a' }) : undefined;
    this.proc.stdout!.on('data', (d: Buffer) => ((this.log += d.toString()), file?.write(d)));
    this.proc.stderr!.on('data', (d: Buffer) => ((this.log += d.toString()), file?.write(d)));
    this.proc.once('close', () => file?.end());
    const p = this.proc;
    // A process that exits while starting fails at once, with what it said.
    const exited = new Promise<never>((_, reject) => p.once('close', (code) => reject(new Error(`${this.name} exited (${code}) while starting:\n${this.log}`))));
    try {
      await Promise.race([
        eventually(async () => (await fetch(`http://127.0.0.1:${this.port}/livez`).catch(() => undefined))?.ok, { timeoutMs: 60_000, what: () => `${this.name} to start:\n${this.log}` }),
        exited,
      ]);
    } finally {
      exited.catch(() => {});
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    // A graceful stop gets 20 s; then it is killed.
    const force = signal === 'SIGKILL' ? undefined : setTimeout(() => p.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(force);
  }
}
