/**
 * OCI hooks: a host program run with the container's state as JSON on its stdin, in the
 * runtime's own namespaces; a non-zero exit or a timeout fails the hook.
 * @internal
 */
import { spawn } from 'node:child_process';
import { RuntimeError } from './errors.js';
import type { Hook, OciState } from './state.js';

/** Runs `hooks` one after the other; throws RuntimeError (ERR_RUNTIME_HOOK) at the first failure. */
export async function runHooks(kind: string, hooks: readonly Hook[] | undefined, state: OciState): Promise<void> {
  for (const [i, h] of (hooks ?? []).entries()) await runHook(`${kind}[${i}]`, h, state);
}

function runHook(name: string, h: Hook, state: OciState): Promise<void> {
  return new Promise((resolve, reject) => {
    const [argv0, ...args] = h.args?.length ? h.args : [h.path];
    const child = spawn(h.path, args, {
      argv0,
      env: Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    const timer = h.timeout ? setTimeout(() => child.kill('SIGKILL'), h.timeout * 1000) : undefined;
    child.stdin.on('error', () => {}); // a hook that does not read its stdin
    child.stdin.end(JSON.stringify(state));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new RuntimeError('ERR_RUNTIME_HOOK', `${name} hook ${h.path}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else {
        const how = signal ? `was killed by ${signal}${h.timeout ? ` (timeout ${h.timeout} s)` : ''}` : `exited with status ${code}`;
        reject(new RuntimeError('ERR_RUNTIME_HOOK', `${name} hook ${h.path} ${how}${stderr ? `: ${stderr.trim()}` : ''}`));
      }
    });
  });
}
