/**
 * `--console-socket`: the master of a container's terminal goes to the caller over this UNIX
 * socket (SCM_RIGHTS), as runc sends it: containerd's shim and Podman's conmon copy between it
 * and the user's terminal. This process closes its own copy afterwards.
 * @internal
 */
import { closeSync } from 'node:fs';
import { RuntimeError } from './errors.js';

/** Checks the pairing runc requires: a terminal needs a console socket, and a console socket a terminal. */
export function checkConsole(terminal: boolean, socket: string | undefined): void {
  if (terminal && !socket) throw new RuntimeError('ERR_RUNTIME_USAGE', 'process.terminal needs --console-socket (where the terminal goes)');
  if (!terminal && socket) throw new RuntimeError('ERR_RUNTIME_USAGE', '--console-socket needs process.terminal (there is no terminal to send)');
}

/** Sends `master` to the socket at `path` and closes it here. */
export async function sendConsole(path: string, master: number): Promise<void> {
  const { connectUnix, sendFds } = await import('../sys/scm.js');
  try {
    const sock = connectUnix(path);
    try {
      sendFds(sock, [master]);
    } finally {
      closeSync(sock);
    }
  } finally {
    closeSync(master);
  }
}
