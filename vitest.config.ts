import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests share one Docker engine and real ports: run files one at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Removes what throwaway PostgreSQL clusters a test left behind (test/helpers/postgres.ts).
    globalSetup: ['test/helpers/global-teardown.ts'],
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
  },
});
