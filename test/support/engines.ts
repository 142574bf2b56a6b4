import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Stops, starts or restarts a native engine through infra/engines.sh (chaos tests). */
export async function engine(action: 'up' | 'down' | 'restart', name: 'rabbitmq' | 's3' | 'mongo' | 'jaeger'): Promise<void> {
  await run('bash', ['infra/engines.sh', action, name], { timeout: 180_000 });
}
