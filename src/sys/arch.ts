/** Syscall numbers that glibc has no wrapper for, per architecture. @internal */
export interface SyscallNumbers {
  readonly pivot_root: number;
  readonly capset: number;
  readonly openat2: number;
  readonly bpf: number;
}

const TABLE: Record<string, SyscallNumbers> = {
  x64: { pivot_root: 155, capset: 126, openat2: 437, bpf: 321 },
  arm64: { pivot_root: 41, capset: 91, openat2: 437, bpf: 280 },
};

/** @internal */
export function syscallNumbers(): SyscallNumbers {
  const n = TABLE[process.arch];
  if (!n) throw new Error(`ctrkit: unsupported architecture ${process.arch} (x64 and arm64 are supported)`);
  return n;
}
