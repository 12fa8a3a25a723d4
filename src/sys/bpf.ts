/**
 * bpf(2), for the few commands ctrkit uses: load a program, attach it to a cgroup, list and
 * detach what is attached there. glibc has no wrapper, so the call goes through syscall(2).
 *
 * `union bpf_attr` is laid out by hand in a zeroed buffer. Pointers inside it (instructions,
 * license, log, id arrays) must stay put while the kernel reads them, so they live in memory
 * from koffi.alloc(), not in JavaScript buffers, and are freed as soon as the call returns.
 * @internal
 */
import { koffi } from './koffi.js';
import { syscallNumbers } from './arch.js';
import { SysError } from './sys-error.js';

/** enum bpf_cmd. */
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_DETACH = 9;
const BPF_PROG_GET_FD_BY_ID = 13;
const BPF_PROG_QUERY = 16;

/** enum bpf_prog_type: BPF_PROG_TYPE_CGROUP_DEVICE. @internal */
export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
/** enum bpf_attach_type: BPF_CGROUP_DEVICE. @internal */
export const BPF_CGROUP_DEVICE = 6;
/** Attach flag: several programs per cgroup, all of which must allow (an AND). @internal */
export const BPF_F_ALLOW_MULTI = 2;

/*
 * Every attr buffer is this large although the commands read at most 72 bytes: some kernels
 * write results past the size they were given (PROG_QUERY's `revision` at offset 56 on 6.6+),
 * and that must land in our buffer, not in whatever follows it.
 */
const ATTR_BYTES = 256;

type Fn = (...args: unknown[]) => unknown;
let syscallFn: Fn | undefined;

/** One bpf(2) call: the result, or -1 with the errno. */
function bpf(cmd: number, attr: Buffer, size: number): { r: number; errno: number } {
  const k = koffi();
  syscallFn ??= k.load('libc.so.6').func('long syscall(long nr, ...)') as Fn;
  const r = Number(syscallFn(syscallNumbers().bpf, 'int', cmd, 'uint8_t *', attr, 'unsigned int', size));
  return { r, errno: r < 0 ? k.errno() : 0 };
}

/** Native memory holding `bytes`, its address, and a way to read it back and free it. */
function pinned(bytes: Buffer | number): { address: bigint; read(len: number): Buffer; free(): void } {
  const k = koffi();
  const len = typeof bytes === 'number' ? bytes : bytes.length;
  const ptr: unknown = k.alloc('uint8_t', Math.max(len, 1));
  const view = new Uint8Array(k.view(ptr, Math.max(len, 1)));
  if (typeof bytes === 'number') view.fill(0);
  else view.set(bytes);
  return {
    address: k.address(ptr),
    read: (n) => Buffer.from(view.subarray(0, n)),
    free: () => k.free(ptr),
  };
}

/** The outcome of {@link progLoad}: a program fd, or the errno and the verifier's log. @internal */
export type ProgLoadResult = { readonly fd: number } | { readonly errno: number; readonly log: string };

/**
 * BPF_PROG_LOAD. The first attempt asks for no log (the common, successful case stays cheap);
 * a failure is retried with a verbose log, which explains what the verifier refused.
 * @param insns - the program, 8 bytes per `struct bpf_insn`
 * @param name - shown by `bpftool prog` (at most 15 characters of [A-Za-z0-9_.])
 * @internal
 */
export function progLoad(progType: number, insns: Buffer, license: string, name: string): ProgLoadResult {
  const first = loadOnce(progType, insns, license, name, 0);
  if ('fd' in first) return first;
  const second = loadOnce(progType, insns, license, name, 256 * 1024);
  if ('fd' in second) return second; // should not happen: the same program, only a log asked for
  return { errno: first.errno, log: second.log };
}

function loadOnce(progType: number, insns: Buffer, license: string, name: string, logSize: number): ProgLoadResult {
  const code = pinned(insns);
  const lic = pinned(Buffer.from(`${license}\0`));
  const log = logSize > 0 ? pinned(logSize) : undefined;
  try {
    const attr = Buffer.alloc(ATTR_BYTES);
    attr.writeUInt32LE(progType, 0); // prog_type
    attr.writeUInt32LE(insns.length / 8, 4); // insn_cnt
    attr.writeBigUInt64LE(code.address, 8); // insns
    attr.writeBigUInt64LE(lic.address, 16); // license
    attr.writeUInt32LE(log ? 1 : 0, 24); // log_level
    attr.writeUInt32LE(logSize, 28); // log_size
    attr.writeBigUInt64LE(log?.address ?? 0n, 32); // log_buf
    // kern_version (40) and prog_flags (44) stay 0.
    attr.write(name.slice(0, 15), 48, 'latin1'); // prog_name[16], NUL-terminated by the zeroes
    const { r, errno } = bpf(BPF_PROG_LOAD, attr, 72);
    if (r >= 0) return { fd: r };
    const text = log ? log.read(logSize).toString('utf8') : '';
    const end = text.indexOf('\0');
    return { errno, log: (end < 0 ? text : text.slice(0, end)).trim() };
  } finally {
    code.free();
    lic.free();
    log?.free();
  }
}

/** BPF_PROG_ATTACH of `progFd` to the cgroup open at `cgroupFd`. @internal */
export function progAttach(cgroupFd: number, progFd: number, attachType: number, flags: number, shownAs: string): void {
  const attr = Buffer.alloc(ATTR_BYTES);
  attr.writeUInt32LE(cgroupFd, 0); // target_fd
  attr.writeUInt32LE(progFd, 4); // attach_bpf_fd
  attr.writeUInt32LE(attachType, 8);
  attr.writeUInt32LE(flags, 12); // attach_flags
  const { r, errno } = bpf(BPF_PROG_ATTACH, attr, 20);
  if (r < 0) throw new SysError('bpf(BPF_PROG_ATTACH)', errno, shownAs);
}

/** BPF_PROG_DETACH of one program (with BPF_F_ALLOW_MULTI the program must be named). @internal */
export function progDetach(cgroupFd: number, progFd: number, attachType: number, shownAs: string): void {
  const attr = Buffer.alloc(ATTR_BYTES);
  attr.writeUInt32LE(cgroupFd, 0);
  attr.writeUInt32LE(progFd, 4);
  attr.writeUInt32LE(attachType, 8);
  const { r, errno } = bpf(BPF_PROG_DETACH, attr, 20);
  if (r < 0) throw new SysError('bpf(BPF_PROG_DETACH)', errno, shownAs);
}

/**
 * BPF_PROG_QUERY: the ids of the programs attached directly to the cgroup (not inherited
 * ones), in the order they run.
 * @internal
 */
export function progQuery(cgroupFd: number, attachType: number, shownAs: string): number[] {
  const capacity = 64; // a cgroup holds at most 64 programs per attach type (BPF_CGROUP_MAX_PROGS)
  const ids = pinned(capacity * 4);
  try {
    const attr = Buffer.alloc(ATTR_BYTES);
    attr.writeUInt32LE(cgroupFd, 0); // target_fd
    attr.writeUInt32LE(attachType, 4);
    attr.writeBigUInt64LE(ids.address, 16); // prog_ids
    attr.writeUInt32LE(capacity, 24); // prog_cnt: in, the room; out, the count
    const { r, errno } = bpf(BPF_PROG_QUERY, attr, 40);
    if (r < 0) throw new SysError('bpf(BPF_PROG_QUERY)', errno, shownAs);
    const count = Math.min(attr.readUInt32LE(24), capacity);
    const raw = ids.read(count * 4);
    return Array.from({ length: count }, (_, i) => raw.readUInt32LE(i * 4));
  } finally {
    ids.free();
  }
}

/** BPF_PROG_GET_FD_BY_ID: an fd on a loaded program (ENOENT once it is freed). @internal */
export function progFdById(id: number): number {
  const attr = Buffer.alloc(ATTR_BYTES);
  attr.writeUInt32LE(id, 0); // prog_id
  // open_flags (8) stay 0; the kernel makes every bpf fd close-on-exec anyway.
  const { r, errno } = bpf(BPF_PROG_GET_FD_BY_ID, attr, 12);
  if (r < 0) throw new SysError('bpf(BPF_PROG_GET_FD_BY_ID)', errno, `program ${id}`);
  return r;
}
