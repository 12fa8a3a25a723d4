/**
 * `ctrkit/testing`: thin helpers for test runners with fixtures (vitest's `test.extend`),
 * over the public API. Each starts a container or creates a network, hands it to the test,
 * and always removes it afterwards — whether the test passed, failed or timed out. Nothing
 * here imports vitest: a fixture is any `(context, use) => Promise<void>`.
 *
 * @example
 * ```ts
 * import { test } from 'vitest';
 * import { Wait, type RunningContainer } from 'ctrkit';
 * import type { Network } from 'ctrkit/network';
 * import { containerFixture, networkFixture, withContainer } from 'ctrkit/testing';
 *
 * const it = test.extend<{ net: Network; web: RunningContainer }>({
 *   net: [networkFixture({ name: 'web-tests' }), { scope: 'file' }],                 // one per file
 *   web: async ({ net }, use) => withContainer({ network: net, aliases: ['web'], command: ['httpd', '-f', '-p', '80'],
 *                                                waitFor: Wait.forListeningPorts([80]) }, use), // one per test
 * });
 * ```
 * @packageDocumentation
 */
import { Container, type RunningContainer, type RunOptions } from '../index.js';
import type { Network, NetworkOptions } from '../network/index.js';

/** The `use` callback of a fixture: hands the value to the test, resolves when the test is done. */
export type Use<T> = (value: T) => Promise<void>;

/** A fixture function without dependencies, as `test.extend` takes it. */
export type Fixture<T> = (context: object, use: Use<T>) => Promise<void>;

/** Starts a container, hands it to `use`, and removes it (killed if it still runs) afterwards, however `use` ends. */
export async function withContainer(options: RunOptions, use: Use<RunningContainer>): Promise<void> {
  const c = await Container.start(options);
  try {
    await use(c);
  } finally {
    await c.remove({ force: true });
  }
}

/** Creates a network, hands it to `use`, and removes it afterwards with anything still on it. */
export async function withNetwork(options: NetworkOptions, use: Use<Network>): Promise<void> {
  const { Network: N } = await import('../network/index.js');
  const net = await N.create(options);
  try {
    await use(net);
  } finally {
    await net.remove({ force: true });
  }
}

/**
 * A fixture that starts a container for each test (or each file, with `{ scope: 'file' }`)
 * and removes it afterwards. For options that depend on other fixtures, write the fixture
 * yourself: `async ({ net }, use) => withContainer({ network: net, ... }, use)`.
 */
export function containerFixture(options: RunOptions): Fixture<RunningContainer> {
  // vitest reads a fixture's first parameter to find its dependencies: it must be a pattern.
  return async ({}, use) => withContainer(options, use);
}

/** A fixture that creates a network for each test (or file) and removes it afterwards. */
export function networkFixture(options: NetworkOptions = {}): Fixture<Network> {
  return async ({}, use) => withNetwork(options, use);
}
