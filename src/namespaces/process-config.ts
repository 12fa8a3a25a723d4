/**
 * What `unshare()` and `nsenter()` share in turning their options into the stage's config:
 * the security settings of the command and its standard streams.
 * @internal
 */
import { capabilityNumbers, type Capability } from './capabilities.js';
import type { StageConfig } from './init/config.js';
import { buildSeccompFilter } from './seccomp.js';
import { compileOciSeccomp, type SeccompOption } from './seccomp-oci.js';
import type { StdioOption } from './spawn.js';
import { checkUser } from './validate.js';

/** The options both spawners take for the command's privileges. */
export interface SecurityOptions {
  readonly capabilities?: readonly Capability[] | 'all' | undefined;
  readonly noNewPrivileges?: boolean | undefined;
  readonly seccomp?: SeccompOption | undefined;
  readonly user?: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] } | undefined;
}

/** The stage's security fields: kept capabilities as numbers (null: untouched), the filter, the user. */
export function securityConfig(options: SecurityOptions): Pick<StageConfig, 'capabilities' | 'noNewPrivileges' | 'seccomp' | 'seccompFlags' | 'user'> {
  const caps = options.capabilities ?? 'all';
  return {
    capabilities: caps === 'all' ? null : capabilityNumbers(caps),
    noNewPrivileges: options.noNewPrivileges ?? false,
    ...seccompConfig(options.seccomp ?? 'unconfined', caps),
    user: checkUser(options.user),
  };
}

/** The filter (base64), and for an OCI profile its seccomp(2) flags (0 included: it marks the profile as one). */
function seccompConfig(profile: SeccompOption, caps: readonly Capability[] | 'all'): Pick<StageConfig, 'seccomp' | 'seccompFlags'> {
  if (typeof profile === 'object') {
    // An OCI profile says what it allows by itself (Docker resolves its capability groups before).
    const { program, flags } = compileOciSeccomp(profile);
    return { seccomp: program.toString('base64'), seccompFlags: flags };
  }
  // ctrkit's filter depends on the capabilities kept: each capability opens its group of calls.
  // Built once per profile and capability set: every container of a caller mostly has the same.
  const key = `${String(profile)}:${caps === 'all' ? 'all' : [...caps].map(String).sort().join(',')}`;
  let seccomp = builtFilters.get(key);
  if (seccomp === undefined) {
    seccomp = buildSeccompFilter(profile, caps)?.toString('base64') ?? '';
    if (builtFilters.size < 32) builtFilters.set(key, seccomp);
  }
  return { seccomp: seccomp || undefined };
}

/** The filters built so far (base64; '' for unconfined), by profile and capabilities. */
const builtFilters = new Map<string, string>();

/** One value for all three streams, or one each, as the spawn core takes them. */
export function normalizeStdio(
  stdio: StdioOption | readonly [StdioOption, StdioOption, StdioOption] | undefined,
  fallback: StdioOption,
): readonly [StdioOption, StdioOption, StdioOption] {
  const s = stdio ?? fallback;
  return typeof s === 'object' ? s : [s, s, s];
}
