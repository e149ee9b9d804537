import { defineConfig } from 'vitest/config';

// Two projects: `unit`, the tests beside each module (fakes for their neighbours, no Docker), and `e2e`,
// test/*.e2e.test.ts against real services. Files run one at a time, since the e2e files share one Docker
// engine and real ports; `npm run test:unit` runs the unit files alone, and in parallel (they share nothing).
export default defineConfig({
  test: {
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // What the platform hands itself unparsed in one process is compared with its wire form (common/wire-check.ts),
    // in the tests' own processes and in every zfaas they start.
    env: { ZFAAS_CHECK_IN_PROCESS: '1' },
    // Removes what throwaway PostgreSQL clusters a test left behind (test/helpers/postgres.ts).
    globalSetup: ['test/helpers/global-teardown.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['**/*.test.ts'], exclude: ['node_modules/**', 'dist/**', '**/*.e2e.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['**/*.e2e.test.ts'] } },
    ],
  },
});
