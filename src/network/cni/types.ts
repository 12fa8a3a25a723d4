/** One plugin entry of a network configuration list (CNI spec 1.0 §Network configuration). */
export interface CniPluginConfig {
  /** The plugin binary's name, looked up in the plugin directories. */
  readonly type: string;
  /** Capabilities the plugin accepts through `runtimeConfig` (e.g. `{ portMappings: true }`). */
  readonly capabilities?: Readonly<Record<string, boolean>>;
  /** Anything else the plugin reads. */
  readonly [key: string]: unknown;
}

/** A network configuration list (`.conflist`). */
export interface CniConfigList {
  /** The spec version the configuration is written for, e.g. `1.0.0`. */
  readonly cniVersion: string;
  /** The network's name. */
  readonly name: string;
  /** Skip CHECK. */
  readonly disableCheck?: boolean;
  /** Plugins, run in order for ADD/CHECK and in reverse for DEL. */
  readonly plugins: readonly CniPluginConfig[];
}

/** An interface of a CNI result. */
export interface CniInterface {
  /** Its name. */
  readonly name: string;
  /** Its MAC address. */
  readonly mac?: string;
  /** The netns path it is in; absent for host interfaces. */
  readonly sandbox?: string;
}

/** An address of a CNI result. */
export interface CniIpConfig {
  /** `10.22.0.2/16`. */
  readonly address: string;
  /** The gateway. */
  readonly gateway?: string;
  /** Index into `interfaces`. */
  readonly interface?: number;
}

/** A CNI 1.0 result (what ADD prints, and the `prevResult` of the next plugin). */
export interface CniResult {
  /** The result's spec version. */
  readonly cniVersion: string;
  /** Interfaces created or used. */
  readonly interfaces?: readonly CniInterface[];
  /** Addresses assigned. */
  readonly ips?: readonly CniIpConfig[];
  /** Routes added. */
  readonly routes?: ReadonlyArray<{ readonly dst: string; readonly gw?: string }>;
  /** DNS settings. */
  readonly dns?: { readonly nameservers?: readonly string[]; readonly domain?: string; readonly search?: readonly string[] };
}

/** What a plugin's VERSION command returns. */
export interface CniVersionInfo {
  /** The version of this answer. */
  readonly cniVersion: string;
  /** Spec versions the plugin supports. */
  readonly supportedVersions: readonly string[];
}
