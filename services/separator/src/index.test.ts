import { createLogger } from '@stemflow/telemetry';
import { expect, it } from 'vitest';
import { loadEngines } from './index.js';

it('refuses more engines than the memory holds, before loading any model', async () => {
  const log = createLogger('t', 'silent');
  await expect(loadEngines({ device: 'cpu', threads: 0, concurrency: 3, memoryBytes: 6 * 2 ** 30, log })).rejects.toMatchObject({
    code: 'MODEL_UNAVAILABLE',
    message: 'SEPARATOR_CONCURRENCY=3 needs about 8.4 GiB (2.8 GiB per engine), and this machine has 6.0 GiB: run fewer jobs at once',
  });
});
