import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const dist = (p: string) => fileURLToPath(new URL(`../../dist/${p}`, import.meta.url));

// The example suite: two files that run in parallel, each with its own network and containers.
// It imports ctrkit by its package name, as a user's suite would (here: resolved to the build).
export default defineConfig({
  resolve: {
    alias: [
      { find: /^ctrkit$/, replacement: dist('index.js') },
      { find: /^ctrkit\/(network|testing)$/, replacement: dist('$1/index.js') },
    ],
  },
  test: {
    include: ['examples/testing/**/*.test.ts'],
    root: new URL('../..', import.meta.url).pathname,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
