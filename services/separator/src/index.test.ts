import { createLogger } from '@stemflow/telemetry';
import { expect, it } from 'vitest';
import { autoEngines, loadEngines } from './index.js';

const GiB = 2 ** 30;

it('refuses more engines than the memory holds, before loading any model', async () => {
  const log = createLogger('t', 'silent');
  await expect(loadEngines({ device: 'cpu', threads: 0, engines: 3, memoryBytes: 6 * GiB, log })).rejects.toMatchObject({
    code: 'MODEL_UNAVAILABLE',
    message: 'SEPARATOR_ENGINES=3 needs about 8.4 GiB (2.8 GiB per engine), and this machine has 6.0 GiB: run fewer engines',
  });
});

it('opens one engine per core (per `threads` cores when set), as many as half the memory holds, at least one', () => {
  expect(autoEngines(2, 24 * GiB)).toBe(2);
  expect(autoEngines(16, 64 * GiB)).toBe(11); // 32 GiB / 2.8 GiB
  expect(autoEngines(16, 64 * GiB, 4)).toBe(4);
  expect(autoEngines(2, 4 * GiB)).toBe(1);
  expect(autoEngines(1, 1 * GiB)).toBe(1);
});
