import { AF_INET, IFF_RUNNING, IFF_UP, SIOCGIFFLAGS, SIOCSIFFLAGS, SOCK_CLOEXEC, SOCK_DGRAM } from '../../sys/constants.js';
import { close, ioctl, socket } from '../../sys/libc.js';

/**
 * Brings `lo` up in a new network namespace, where it starts down. A SIOCSIFFLAGS ioctl on
 * a throwaway socket is the smallest way to do it: no netlink, no `ip` binary.
 * @internal
 */
export function bringLoopbackUp(): void {
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    const ifr = Buffer.alloc(40); // struct ifreq: char name[16]; short flags; ...
    ifr.write('lo', 0, 'latin1');
    ioctl(fd, SIOCGIFFLAGS, ifr);
    ifr.writeInt16LE(ifr.readInt16LE(16) | IFF_UP | IFF_RUNNING, 16);
    ioctl(fd, SIOCSIFFLAGS, ifr);
  } finally {
    close(fd);
  }
}
