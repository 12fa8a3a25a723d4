import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

// The fast lane (`npm run test:unit`): tests of the pure parts — parsers, the seccomp builder,
// limits mapping, ports, image references, the log format, cgroup units, device rules, the
// error shape. They need neither root nor a container nor a build (they import the sources),
// so .ci/run runs them first, as an unprivileged user, in seconds. A file listed here must
// stay that way; anything that touches the kernel belongs to the main suite (vitest.config.ts),
// which runs these too.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^ctrkit$/, replacement: src('index.ts') },
      { find: /^ctrkit\/(namespaces|cgroups|overlay|network|oci|monitor|testing)$/, replacement: src('$1/index.ts') },
    ],
  },
  // Vite's cache under the config's own directory, not node_modules/.vite: the unprivileged
  // user runs from a copy whose node_modules it may not write.
  cacheDir: '.vite-unit',
  test: {
    include: ['test/unit/**/*.test.ts', 'test/logs.test.ts'],
    pool: 'threads',
  },
});
