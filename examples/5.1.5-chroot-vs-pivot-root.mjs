// Chapter 5.1.5 — chroot vs MNT namespace, the table's two columns:
//
//   | feature                 | chroot | MNT namespace (+ pivot_root) |
//   | changes the root        |   yes  |   yes                        |
//   | isolates mount points   |   no   |   yes                        |
//   | stops the chroot escape |   no   |   yes                        |
//
// The chroot column runs a shell jailed by busybox's `chroot` applet in a copy of ctrkit's
// default rootfs, on the host's own mount table (no namespace at all). The escape is the
// classic one: `mkdir x; chroot x; cd ../../..; chroot .` — chroot() does not move the working
// directory, so after `chroot x` it is outside the new root, where ".." is never stopped.
// A shell cannot do it (busybox's `chroot` applet, like every chroot(8), changes directory to
// the new root right after the call), so a tiny static C program does it, compiled here.
// The MNT column runs the same program, with every capability (`privileged`), in a ctrkit
// container: its root was made with pivot_root in a mount namespace of its own and the old
// root detached, so the escape ends at the container's root and finds nothing of the host.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container, defaultRootfs } from 'ctrkit';

if (process.getuid() !== 0) {
  console.log('chroot() needs CAP_SYS_CHROOT on the host: run this example as root');
  process.exit(0);
}

const ESCAPE_C = String.raw`
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void ls_root(const char *label) {
  char *names[256]; int n = 0; DIR *d = opendir("/"); struct dirent *e;
  while (d && (e = readdir(d)) && n < 256) if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
  if (d) closedir(d);
  qsort(names, n, sizeof *names, cmp);
  printf("%s /:", label);
  for (int i = 0; i < n; i++) printf(" %s", names[i]);
  printf("\n");
}
int main(int argc, char **argv) {
  struct stat st;
  ls_root("before the escape,");
  mkdir("ctk-x", 0755);                                   /* mkdir x */
  if (chroot("ctk-x") != 0) { perror("chroot ctk-x"); return 2; }  /* chroot x: the cwd stays outside */
  for (int i = 0; i < 64; i++) if (chdir("..") != 0) break;        /* cd ../../.. */
  if (chroot(".") != 0) { perror("chroot ."); return 2; }          /* chroot . */
  if (chdir("/") != 0) return 2;
  ls_root("after the escape,");
  printf("host marker %s: %s\n", argv[1], stat(argv[1], &st) == 0 ? "FOUND" : "not found");
  return 0;
}
`;

const tag = `ctk-chroot-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), `${tag}-`));
const jail = join(dir, 'jail');
const marker = join(dir, 'ctk-host-marker'); // on the host, outside the jail
const mountedInJail = join(jail, 'tmp');
let mounted = false;
try {
  writeFileSync(marker, 'the host\n');
  // The escape program, static: it runs in a busybox rootfs with no libc.
  const cc = spawnSync('cc', ['-static', '-O2', '-x', 'c', '-o', join(dir, 'escape'), '-'], { input: ESCAPE_C, encoding: 'utf8' });
  if (cc.error || cc.status !== 0) {
    throw new Error(`cannot compile the escape program (needs gcc and libc6-dev): ${cc.error?.message ?? cc.stderr}`);
  }
  // The jail: a copy of ctrkit's default rootfs, with the program in it.
  cpSync(await defaultRootfs(), jail, { recursive: true, verbatimSymlinks: true });
  copyFileSync(join(dir, 'escape'), join(jail, 'escape'));
  chmodSync(join(jail, 'escape'), 0o755);
  const busybox = join(jail, 'bin/busybox');
  const inJail = (script) => execFileSync(busybox, ['chroot', jail, '/bin/sh', '-c', script], { encoding: 'utf8' });

  const indent = (text) => text.replace(/^(?=.)/gm, '  ');
  const row = {};

  console.log("== chroot: busybox chroot into a copy of the default rootfs, on the host's own mount table ==");
  process.stdout.write(inJail('echo "changes the root: ls / -> $(ls / | tr "\\n" " ")"'));
  inJail('mount -t tmpfs ctk-chroot-tmpfs /tmp');
  mounted = true;
  const seen = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.includes('ctk-chroot-tmpfs'));
  execFileSync('umount', [mountedInJail]);
  mounted = false;
  row.chrootMounts = !seen;
  console.log(`isolates mount points: ${seen ? `no — a tmpfs mounted inside is in the host's mount table, at ${seen.split(' ')[4]}` : 'yes'}`);
  const jailed = inJail(`/escape ${marker}`);
  row.chrootEscape = !jailed.includes(': FOUND');
  console.log(`stops the chroot escape: ${row.chrootEscape ? 'yes' : 'no'}`);
  process.stdout.write(indent(jailed));
  rmSync(join(jail, 'ctk-x'), { recursive: true, force: true }); // the escape's "mkdir x"

  console.log('== ctrkit container: its own mount namespace, pivot_root, old root detached; privileged ==');
  const before = readFileSync('/proc/self/mountinfo', 'utf8');
  const r = await Container.run({
    rootfs: jail, // under an overlay: the container's writes go to a throwaway layer
    privileged: true, // every capability (CAP_SYS_CHROOT, CAP_SYS_ADMIN), no seccomp filter
    command: [
      'sh',
      '-c',
      `echo "changes the root: ls / -> $(ls / | tr "\\n" " ")"
      mount -t tmpfs ctk-container-tmpfs /tmp && echo "mounted a tmpfs on /tmp inside"
      /escape ${marker}`,
    ],
  });
  if (r.exitCode !== 0) throw new Error(`the container failed (exit ${r.exitCode}): ${r.stderr}`);
  const [changes, mountedInside, ...escaped] = r.stdout.split('\n');
  const after = readFileSync('/proc/self/mountinfo', 'utf8');
  console.log(changes);
  row.containerMounts = !after.includes('ctk-container-tmpfs');
  console.log(
    `isolates mount points: ${row.containerMounts ? 'yes' : 'no'} — ${mountedInside}; in the host's mount table: ${after.includes('ctk-container-tmpfs') ? 'yes' : 'no'} (host table unchanged: ${after === before})`,
  );
  row.containerEscape = !r.stdout.includes(': FOUND');
  console.log(`stops the chroot escape: ${row.containerEscape ? 'yes' : 'no'}`);
  process.stdout.write(indent(escaped.join('\n')));

  const yes = (b) => (b ? 'yes' : 'no ');
  console.log('\n| feature                 | chroot | MNT namespace |');
  console.log('|-------------------------|--------|---------------|');
  console.log('| changes the root        | yes    | yes           |');
  console.log(`| isolates mount points   | ${yes(row.chrootMounts)}    | ${yes(row.containerMounts)}           |`);
  console.log(`| stops the chroot escape | ${yes(row.chrootEscape)}    | ${yes(row.containerEscape)}           |`);
} finally {
  if (mounted) spawnSync('umount', ['-l', mountedInJail]);
  rmSync(dir, { recursive: true, force: true });
}
