/**
 * The broker closes a gateway's connection (as an operator's `rabbitmqctl close_connection`, a
 * broker failover or a network cut would) while event streams are open on it: the gateway's own
 * queue goes with the connection, so the events published meanwhile never reach it. Each stream
 * still ends with the job's last state: the gateway reconnects, and every open stream reads the
 * read model once (resync). Services are processes on the real engines.
 */
import { objectKeys } from '@stemflow/contracts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { newEvent } from '@stemflow/bus';

import { afterAll, beforeAll, expect, it } from 'vitest';
import { toneWav } from '../support/audio.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { eventually } from '../support/env.js';
import { followSse, uploadJob, type SseEvent } from '../support/jobs-http.js';

const run = promisify(execFile);
const rabbitmqctl = async (...args: string[]) => (await run('bash', ['infra/engines.sh', 'rabbitmqctl', ...args])).stdout;

let c: Cluster;
beforeAll(async () => {
  c = await startCluster({ services: ['status', 'decoder', 'gateway'] });
}, 120_000);
afterAll(async () => {
  await c?.stop();
});

it('streams open while the broker closes the gateway\'s connection each end with the job\'s last state', { timeout: 120_000 }, async () => {
  // Three jobs, decoded, waiting for a separator (none runs here): each with a stream open.
  const ids = await Promise.all([1, 2, 3].map(async (n) => uploadJob(c.api, { name: `s${n}.wav`, data: await toneWav(2, 200 + n * 50) })));
  for (const id of ids) await eventually(async () => ((await c.jobs.get(id))?.input.duration_sec ?? 0) > 0, { timeoutMs: 30_000, what: `job ${id} decoded` });
  const streams: Record<string, SseEvent[]> = {};
  const ended = ids.map((id) => followSse(c.api, id, (e) => void (streams[id] ??= []).push(e)));
  await eventually(async () => ids.every((id) => (streams[id]?.length ?? 0) > 0), { what: 'every stream open' });

  // The gateway's connection, by the name it gives the broker.
  const list = await rabbitmqctl('list_connections', 'pid', 'client_properties', '--no-table-headers', '--quiet');
  const pids = list.split('\n').filter((l) => l.includes('stemflow-gateway')).map((l) => l.split('\t')[0]!);
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) await rabbitmqctl('close_connection', pid, 'closed by the test');

  // While it reconnects: the jobs complete (the events go to the status service, not to the gateway's queue, which is gone).
  for (const id of ids) {
    const stems = [{ name: 'vocals' as const, format: 'wav16' as const, key: objectKeys.stem(id, 'vocals', 'wav'), bytes: 4 }];
    await c.bus.publish(newEvent('job.completed', id, { stems, model: 'htdemucs', timings: {} }));
  }
  // Well before a quiet stream's own read (every 30 s): the reconnect's resync ended them.
  const all = await Promise.race([Promise.all(ended), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('a stream did not end before the quiet-stream read')), 20_000))]);
  for (const [i, events] of all.entries()) {
    expect(events.at(-1)?.event, ids[i]).toBe('completed');
    expect(events.filter((e) => e.event === 'completed')).toHaveLength(1);
  }
});
