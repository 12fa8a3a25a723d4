/**
 * What `unshare()` and `nsenter()` share in turning their options into the stage's config:
 * the security settings of the command and its standard streams.
 * @internal
 */
import { capabilityNumbers, type Capability } from './capabilities.js';
import type { StageConfig } from './init/config.js';
import { buildSeccompFilter, type SeccompProfile } from './seccomp.js';
import type { StdioOption } from './spawn.js';
import { checkUser } from './validate.js';

/** The options both spawners take for the command's privileges. */
export interface SecurityOptions {
  readonly capabilities?: readonly Capability[] | 'all' | undefined;
  readonly noNewPrivileges?: boolean | undefined;
  readonly seccomp?: SeccompProfile | undefined;
  readonly user?: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] } | undefined;
}

/** The stage's security fields: kept capabilities as numbers (null: untouched), the filter, the user. */
export function securityConfig(options: SecurityOptions): Pick<StageConfig, 'capabilities' | 'noNewPrivileges' | 'seccomp' | 'user'> {
  const caps = options.capabilities ?? 'all';
  return {
    capabilities: caps === 'all' ? null : capabilityNumbers(caps),
    noNewPrivileges: options.noNewPrivileges ?? false,
    // The filter depends on the capabilities kept: each capability opens its group of calls.
    seccomp: buildSeccompFilter(options.seccomp ?? 'unconfined', caps)?.toString('base64'),
    user: checkUser(options.user),
  };
}

/** One value for all three streams, or one each, as the spawn core takes them. */
export function normalizeStdio(
  stdio: StdioOption | readonly [StdioOption, StdioOption, StdioOption] | undefined,
  fallback: StdioOption,
): readonly [StdioOption, StdioOption, StdioOption] {
  const s = stdio ?? fallback;
  return typeof s === 'object' ? s : [s, s, s];
}
