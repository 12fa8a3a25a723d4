/**
 * The OCI test lab: a real registry (Debian's docker-registry) on 127.0.0.1, optionally
 * behind basic auth or a token server of our own, and test images built with umoci from a
 * busybox-static rootfs and pushed with skopeo. Everything lives under one /tmp/ctk-oci-* dir
 * and every process is killed by the returned stop functions.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createSign, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';

export const USER = 'ctk';
export const PASSWORD = 'secret-pw';

/** A free TCP port on 127.0.0.1 (bound and released: the registry takes it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

async function waitFor(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`registry exited: ${log()}`);
    try {
      const r = await fetch(url);
      if (r.status === 200 || r.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`registry did not answer at ${url}: ${log()}`);
}

/** A running registry. */
export interface Registry {
  readonly host: string; // 127.0.0.1:PORT
  readonly stop: () => Promise<void>;
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

/** A token server in the style of Docker's: RS256 JWTs with the signing cert in x5c. */
export interface TokenServer {
  readonly realm: string;
  readonly certFile: string;
  /** Scopes asked for, in order (to check caching). */
  readonly requests: string[];
  readonly stop: () => Promise<void>;
}

export const TOKEN_SERVICE = 'ctk-registry';
export const TOKEN_ISSUER = 'ctk-token-issuer';

function b64url(x: Buffer | string): string {
  return Buffer.from(x).toString('base64url');
}

export async function startTokenServer(dir: string, options: { expiresIn?: number } = {}): Promise<TokenServer> {
  const key = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', certFile, '-subj', '/CN=ctk-token', '-days', '2']);
  const der = Buffer.from(
    readFileSync(certFile, 'utf8')
      .replace(/-----[^-]+-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );
  const pem = readFileSync(key, 'utf8');
  const requests: string[] = [];
  const server: Server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const scope = url.searchParams.get('scope') ?? '';
    requests.push(scope);
    const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    if (auth !== expected) {
      res.writeHead(401).end('{"details":"bad credentials"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scope
      ? scope.split(' ').map((s) => {
          const [type, name, actions] = s.split(':');
          return { type, name, actions: (actions ?? '').split(',') };
        })
      : [];
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = { iss: TOKEN_ISSUER, sub: USER, aud: TOKEN_SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(pem);
    const body: Record<string, unknown> = { token: `${input}.${b64url(sig)}`, issued_at: new Date().toISOString() };
    if (options.expiresIn) body.expires_in = options.expiresIn;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    requests,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Starts docker-registry on a free loopback port with its storage in `dir`. */
export async function startRegistry(dir: string, auth?: { htpasswd: string } | { token: TokenServer }): Promise<Registry> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let authYaml = '';
  if (auth && 'htpasswd' in auth) authYaml = `auth:\n  htpasswd:\n    realm: ctk-realm\n    path: ${auth.htpasswd}\n`;
  if (auth && 'token' in auth) {
    authYaml = `auth:\n  token:\n    realm: ${auth.token.realm}\n    service: ${TOKEN_SERVICE}\n    issuer: ${TOKEN_ISSUER}\n    rootcertbundle: ${auth.token.certFile}\n`;
  }
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${authYaml}`,
  );
  let output = '';
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await waitFor(`http://127.0.0.1:${port}/v2/`, child, () => output);
  } catch (e) {
    await killChild(child);
    throw e;
  }
  return { host: `127.0.0.1:${port}`, stop: () => killChild(child) };
}

/** An htpasswd file (bcrypt) for USER. */
export function htpasswdFile(dir: string): string {
  const file = join(dir, 'htpasswd');
  writeFileSync(file, sh('htpasswd', ['-Bbn', USER, PASSWORD]));
  return file;
}

const BUSYBOX = existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox';

/** A tiny rootfs: static busybox and its applets, passwd/group, some files to delete later. */
export function busyboxRootfs(dir: string): string {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'var/cache', 'opt/old', 'root']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'echo', 'cat', 'ls', 'id', 'pwd', 'env', 'hostname', 'true', 'sleep']) symlinkSync('busybox', join(root, 'bin', a));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'var/cache/old'), 'old cache\n');
  writeFileSync(join(root, 'var/cache/keep'), 'kept\n');
  writeFileSync(join(root, 'opt/old/file'), 'hidden by an opaque dir\n');
  return root;
}

/**
 * Builds the test image in an OCI layout with umoci: layer 1 the busybox rootfs, layer 2
 * adds /etc/hello.txt, layer 3 whites out /var/cache/old, layer 4 replaces /opt opaquely;
 * a config with entrypoint, cmd, env, workdir, user and exposed ports. Tags: `base` (layer
 * 1 only), `v1` (all), `arm` (v1 with architecture arm64).
 */
export function buildImage(dir: string): string {
  const layout = join(dir, 'layout');
  const root = busyboxRootfs(dir);
  sh('umoci', ['init', '--layout', layout]);
  sh('umoci', ['new', '--image', `${layout}:v1`]);
  sh('umoci', ['insert', '--image', `${layout}:v1`, root, '/']);
  sh('umoci', ['tag', '--image', `${layout}:v1`, 'base']);
  const hello = join(dir, 'hello.txt');
  writeFileSync(hello, 'hello from layer 2\n');
  sh('umoci', ['insert', '--image', `${layout}:v1`, hello, '/etc/hello.txt']);
  sh('umoci', ['insert', '--image', `${layout}:v1`, '--whiteout', '/var/cache/old']);
  const opt = join(dir, 'newopt');
  mkdirSync(opt);
  writeFileSync(join(opt, 'new'), 'new /opt\n');
  sh('umoci', ['insert', '--image', `${layout}:v1`, '--opaque', opt, '/opt']);
  sh('umoci', [
    'config',
    '--image',
    `${layout}:v1`,
    '--config.entrypoint',
    '/bin/sh',
    '--config.entrypoint',
    '-c',
    '--config.cmd',
    'echo hi from $GREETING in $(pwd)',
    '--config.env',
    'GREETING=ctrkit',
    '--config.env',
    'PATH=/bin',
    '--config.workingdir',
    '/tmp',
    '--config.user',
    '0:0',
    '--config.exposedports',
    '8080/tcp',
  ]);
  sh('umoci', ['config', '--image', `${layout}:v1`, '--tag', 'arm', '--architecture', 'arm64']);
  return layout;
}

/**
 * skopeo copy from the layout to the registry. Asynchronous: the token server runs in this
 * process, and a synchronous child would keep it from answering the registry.
 */
export async function push(layout: string, tag: string, dest: string, opts: { creds?: boolean; format?: 'v2s2' } = {}): Promise<void> {
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  if (opts.creds) args.push('--dest-creds', `${USER}:${PASSWORD}`);
  if (opts.format) args.push('--format', opts.format);
  await promisify(execFile)('skopeo', [...args, `oci:${layout}:${tag}`, `docker://${dest}`]);
}
