/**
 * A test's tier is its folder, and the tier says what it needs:
 *   unit    beside the code (packages/*, services/*, models/) and test/unit: nothing but Node and ffmpeg
 *   engines test/engines: RabbitMQ, versitygw, FerretDB, Jaeger on loopback (infra/engines.sh), the tiny model
 *   model   test/model and test/e2e: the real htdemucs weights (1-5 GiB a session), and the engines
 *   chaos   test/chaos: tests that stop and restart the engines, alone and last
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'models/**/*.test.ts', 'test/unit/**/*.test.ts'],
          env: { LOG_LEVEL: 'silent' },
          // Unit files run in parallel on 2 cores: a 4 s case can take three times as long.
          testTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'engines',
          include: ['test/engines/**/*.test.ts'],
          env: { LOG_LEVEL: 'silent' },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // One file at a time: they share one broker, and on 2 cores parallel files starve the
          // timing-sensitive ones (consumer takeover, child processes) into flakiness.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          // The real model: 1-5 GiB per session. One file at a time, so never more than two
          // separators run at once (a test may hold ours and the package's).
          name: 'model',
          include: ['test/model/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          env: { LOG_LEVEL: 'silent' },
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          // Tests that stop and restart engines: alone, after everything else.
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          env: { LOG_LEVEL: 'silent' },
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
