// Chapter 5.6 — `sudo ./mini-container run /bin/bash`: an interactive shell in the container.
// The container gets a pseudo-terminal of its own (`tty: true`, `docker run -t`): the shell's
// stdin, stdout, stderr and controlling terminal; `container.tty` is the other end.
//
// - On a terminal (`node examples/5.6-interactive.mjs`): this terminal is attached to it, in
//   raw mode (Ctrl-C goes to the shell, not to node), and window resizes are passed on.
//   Type `exit` (or Ctrl-D) to leave. The CLI does the same: `ctrkit run -it --rootfs builtin sh`.
// - Otherwise (stdin is a pipe or a file): the example drives the shell itself, typing the
//   chapter's commands into the terminal and reading the screen, and prints the transcript.
import { Container } from 'ctrkit';

const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
const size = () => ({ cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 });

const c = await Container.start({
  command: ['/bin/sh'], // the default rootfs has no bash; busybox's sh is the chapter's /bin/bash here
  hostname: 'container',
  env: { PS1: '\\u@\\h:\\w\\$ ' },
  tty: true,
  ttySize: interactive ? size() : { cols: 80, rows: 24 },
});
try {
  if (interactive) {
    console.log(`Running [/bin/sh] as PID 1 of container ${c.id} (host PID ${c.pid}); type exit to leave`);
    await attach(c);
  } else {
    console.log(`stdin is not a terminal: driving the shell through container.tty (host PID ${c.pid})`);
    await drive(c, ['echo $$', 'hostname', 'ps', 'tty', 'stty size', 'exit']);
  }
  const exit = await c.wait();
  console.log(`\nthe shell exited: code ${exit.exitCode}${exit.signal ? `, signal ${exit.signal}` : ''}`);
} finally {
  await c.remove({ force: true });
}

/** This terminal, connected to the container's: raw keystrokes in, the screen out, the window size followed. */
async function attach(container) {
  const { stdin, stdout } = process;
  const tty = container.tty;
  const onResize = () => {
    const { cols, rows } = size();
    container.resize(cols, rows);
  };
  stdout.on('resize', onResize);
  stdin.setRawMode(true);
  stdin.pipe(tty);
  tty.pipe(stdout, { end: false });
  try {
    await new Promise((resolve) => {
      tty.once('end', resolve);
      tty.once('close', resolve);
    });
  } finally {
    stdin.unpipe(tty);
    stdin.setRawMode(false);
    stdin.pause();
    stdout.off('resize', onResize);
  }
}

/** Types each command, waits for the next prompt, and prints the screen as a transcript. */
async function drive(container, commands) {
  const tty = container.tty;
  tty.setEncoding('utf8');
  let screen = '';
  let wake = () => {};
  let ended = false;
  tty.on('data', (d) => {
    // Busybox's line editor asks where the cursor is (ESC [ 6 n); a screen needs no such codes.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the terminal's control sequences
    screen += d.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    wake();
  });
  tty.once('end', () => {
    ended = true;
    wake();
  });
  const prompt = /root@container:[^\n]*# $/;
  const waitFor = async (done) => {
    while (!done()) {
      if (ended) return;
      await new Promise((resolve) => (wake = resolve));
    }
  };
  await waitFor(() => prompt.test(screen));
  for (const command of commands) {
    const from = screen.length;
    tty.write(`${command}\n`);
    // The shell echoes the line, runs it, and prints the prompt again (or, for exit, hangs up).
    await waitFor(() => (command === 'exit' ? ended : prompt.test(screen.slice(from)) && screen.slice(from).includes('\n')));
  }
  // The terminal turns \n into \r\n; a transcript wants plain lines.
  process.stdout.write(`${screen.replace(/\r/g, '').trim()}\n`);
}
