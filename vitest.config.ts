import { defineConfig } from 'vitest/config';

const LOAD = 'test/load-*.test.ts';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two workers match the 2-core machines; integration files each start their own servers on ephemeral ports.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'main', include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/*.test.ts'], exclude: [LOAD] } },
      // The load tests measure the event loop of the process that hosts the server: they run last, one file at
      // a time, so the rest of the suite is not competing for the two cores while they measure.
      { extends: true, test: { name: 'load', include: [LOAD], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
