import { InvalidOptionError } from '../errors.js';

/** An IPv4 subnet: `10.88.0.0/24` as numbers. */
export interface Ipv4Subnet {
  /** The network address as an unsigned 32-bit number. */
  readonly network: number;
  /** The prefix length, 0-32. */
  readonly prefix: number;
  /** `10.88.0.0/24`, normalized (host bits cleared). */
  readonly cidr: string;
}

/** Parses a dotted IPv4 address to an unsigned 32-bit number; throws InvalidOptionError. @internal */
export function parseIpv4(text: string, option = 'address'): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new InvalidOptionError(option, `"${text}" is not an IPv4 address`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

/** Formats an unsigned 32-bit number as a dotted IPv4 address. @internal */
export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

/** The netmask of a prefix length as a number. @internal */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses `a.b.c.d/len`. Host bits are cleared, so `10.88.0.1/24` gives `10.88.0.0/24`.
 * @param option - the option name used in errors
 */
export function parseSubnet(text: string, option = 'subnet'): Ipv4Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (!m || Number(m[2]) > 32) throw new InvalidOptionError(option, `"${text}" is not an IPv4 CIDR like 10.88.0.0/24`);
  const prefix = Number(m[2]);
  const network = (parseIpv4(m[1]!, option) & maskOf(prefix)) >>> 0;
  return { network, prefix, cidr: `${formatIpv4(network)}/${prefix}` };
}

/** True when two subnets share at least one address. @internal */
export function subnetsOverlap(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.network ^ b.network) & maskOf(p)) === 0;
}

/** True when `ip` lies in `subnet`. @internal */
export function inSubnet(ip: number, subnet: Ipv4Subnet): boolean {
  return (ip & maskOf(subnet.prefix)) >>> 0 === subnet.network;
}

/** 4 bytes in network order, as netlink carries an IPv4 address. @internal */
export function ipv4Bytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
