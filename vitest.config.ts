import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const dist = (p: string) => fileURLToPath(new URL(`./dist/${p}`, import.meta.url));

// Tests import the package the way users do ('ctrkit', 'ctrkit/namespaces' ...), resolved to
// the built files: the init stage is spawned from dist/, so that is what must be tested.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^ctrkit$/, replacement: dist('index.js') },
      { find: /^ctrkit\/(namespaces|cgroups|overlay|network|oci|monitor|testing)$/, replacement: dist('$1/index.js') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // `vitest run --typecheck.only` (npm run test:types): the public types, checked by tsc.
    typecheck: { include: ['test/**/*.test-d.ts'], tsconfig: 'test/tsconfig.types.json' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One file at a time: several tests prove that nothing of ctrkit's is left on the whole
    // machine (processes, mounts), which only holds when no other file is mid-run.
    fileParallelism: false,
    globalSetup: ['test/setup/global.ts'],
    // The JSON report lets .ci/run print a plain "N passed, N failed" closing line.
    reporters: ['default', ['json', { outputFile: process.env.CTRKIT_TEST_REPORT ?? '.test-results.json' }]],
  },
});
