import { configDefaults, defineConfig } from 'vitest/config';

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
          include: ['test/**/*.test.ts'],
          env: { LOG_LEVEL: 'silent' },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // One file at a time: they share one broker, and on 2 cores parallel files starve the
          // timing-sensitive ones (consumer takeover, child processes) into flakiness.
          fileParallelism: false,
          exclude: [...configDefaults.exclude, 'test/unit/**', 'test/chaos/**', 'test/separator/**', 'test/e2e/**'],
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          // The real model: 1-5 GiB per session. One file at a time, so never more than two
          // separators run at once (a test may hold ours and the package's).
          name: 'model',
          include: ['test/separator/**/*.test.ts', 'test/e2e/**/*.test.ts'],
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
