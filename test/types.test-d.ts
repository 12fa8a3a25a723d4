// The public types of the harness API, checked by tsc (`npm run test:types`), against the
// built declarations the package ships ('ctrkit' resolves to the package itself).
import { describe, expectTypeOf, it, test } from 'vitest';
import { Container, type StartupError, Wait, type HealthState, type RunningContainer, type RunOptions, type StartupErrorCode, type WaitStrategy } from 'ctrkit';
import { Network, parsePortMapping, type NetworkMember, type PortMapping } from 'ctrkit/network';
import { containerFixture, networkFixture, withContainer, type Fixture, type Use } from 'ctrkit/testing';

describe('readiness', () => {
  it('Wait builds strategies that start() takes', () => {
    expectTypeOf(Wait.forLogMessage(/ready/, 2)).toEqualTypeOf<WaitStrategy>();
    expectTypeOf(Wait.forHttp).parameters.toEqualTypeOf<[path: string, port: number, options?: import('ctrkit').HttpWaitOptions]>();
    expectTypeOf(Wait.forAll).parameter(0).toEqualTypeOf<readonly WaitStrategy[]>();
    expectTypeOf<RunOptions['waitFor']>().toEqualTypeOf<WaitStrategy | undefined>();
    expectTypeOf<RunOptions['startupTimeout']>().toEqualTypeOf<number | undefined>();
    expectTypeOf(Container.start).returns.resolves.toEqualTypeOf<RunningContainer>();
    // @ts-expect-error: a port is a number
    Wait.forHttp('/', '80');
  });

  it('StartupError carries a stable code and the logs', () => {
    expectTypeOf<StartupError['code']>().toEqualTypeOf<StartupErrorCode>();
    expectTypeOf<StartupErrorCode>().toEqualTypeOf<'ERR_STARTUP_TIMEOUT' | 'ERR_STARTUP_EXITED' | 'ERR_STARTUP_FAILED'>();
    expectTypeOf<StartupError['logs']>().toBeString();
  });

  it('health is visible in inspect()', () => {
    expectTypeOf<Awaited<ReturnType<RunningContainer['inspect']>>['health']>().toEqualTypeOf<HealthState | undefined>();
    expectTypeOf<HealthState['status']>().toEqualTypeOf<'starting' | 'healthy' | 'unhealthy'>();
  });
});

describe('ports and networks', () => {
  it('mappedPort and host tell where to connect', () => {
    expectTypeOf<RunningContainer['mappedPort']>().toEqualTypeOf<(containerPort: number, protocol?: 'tcp' | 'udp') => number>();
    expectTypeOf<RunningContainer['host']>().toBeString();
    expectTypeOf(parsePortMapping('80')).toEqualTypeOf<PortMapping>();
  });

  it('a Network is a network option, with aliases', () => {
    expectTypeOf<Network>().toMatchTypeOf<NonNullable<RunOptions['network']>>();
    expectTypeOf<RunOptions['aliases']>().toEqualTypeOf<readonly string[] | undefined>();
    expectTypeOf<RunOptions['extraHosts']>().toEqualTypeOf<readonly string[] | undefined>();
    expectTypeOf(Network.create).returns.resolves.toEqualTypeOf<Network>();
    expectTypeOf<Network['members']>().returns.resolves.toEqualTypeOf<NetworkMember[]>();
    expectTypeOf<Network>().toMatchTypeOf<AsyncDisposable>();
  });
});

describe('ctrkit/testing', () => {
  it('fixtures fit test.extend', () => {
    expectTypeOf(containerFixture({ command: ['true'] })).toEqualTypeOf<Fixture<RunningContainer>>();
    expectTypeOf(networkFixture()).toEqualTypeOf<Fixture<Network>>();
    expectTypeOf(withContainer).parameter(1).toEqualTypeOf<Use<RunningContainer>>();
    const it2 = test.extend<{ net: Network; web: RunningContainer }>({
      net: [networkFixture(), { scope: 'file' }],
      web: async ({ net }, use) => withContainer({ network: net, command: ['true'] }, use),
    });
    expectTypeOf(it2).toBeFunction();
  });
});
