// The three hosts of scripts/swarm/hosts.sh seen from a test: why this machine cannot build them, the
// script and each host's docker CLI, and a relay per host from a unix socket here to that host's
// 127.0.0.1:3000 (no TCP on this machine's own network), with an HTTP client over it. The relay runs inside
// its host's network namespace, so it dies with the host when the host crashes, as a client's path to a
// lost machine does (its socket then refuses connections).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, waitFor } from './platform.js';

const run = promisify(execFile);
export const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;
export const HOSTS_SH = join(ROOT, 'scripts', 'swarm', 'hosts.sh');
export const lines = (s: string): string[] => s.split('\n').filter(Boolean);

// Why this machine cannot build the hosts (undefined: it can).
export function swarmUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, a dockerd per host)';
  for (const tool of ['ip', 'nsenter', 'unshare', 'dockerd', 'docker']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { ...process.env, PATH } });
    } catch {
      return `${tool} is not installed (scripts/ensure-cluster-tools.sh, scripts/ensure-docker.sh)`;
    }
  }
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore', env: { ...process.env, PATH } });
    execFileSync('docker', ['stack', 'deploy', '--help'], { stdio: 'ignore', timeout: 10_000 });
  } catch (e) {
    return `no \`ip netns\` or no \`docker stack\` here: ${String(e)}`;
  }
  return undefined;
}

// A command's output; an error with its output when it fails. showStderr: its stderr goes to the log.
export async function sh(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env: Record<string, string> = {},
  showStderr = false,
): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd: ROOT,
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 32 * 1024 * 1024,
      env: { ...process.env, PATH, ...env },
    });
    if (showStderr && stderr.trim()) console.log(stderr.trim());
    return stdout;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`.slice(0, 8000));
  }
}

export interface Answer {
  status: number;
  json: unknown;
}

// One HTTP request through a unix socket: a JSON body or a form; the answer's body as JSON (or text when it
// is not JSON).
export async function requestOver(
  socketPath: string,
  method: string,
  path: string,
  o: { token?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  let payload: Buffer | undefined;
  if (o.body instanceof FormData) {
    const r = new Request('http://api/', { method: 'POST', body: o.body });
    payload = Buffer.from(await r.arrayBuffer());
    headers['content-type'] = r.headers.get('content-type') ?? '';
  } else if (o.body !== undefined) {
    payload = Buffer.from(JSON.stringify(o.body));
    headers['content-type'] = 'application/json';
  }
  if (payload) headers['content-length'] = String(payload.length);
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers, timeout: o.timeoutMs ?? 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: unknown = text;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// The hosts PREFIX-a, -b, -c of one test run.
export class SwarmHosts {
  private readonly relays = new Map<string, ChildProcess>();

  constructor(
    readonly prefix: string,
    private readonly dir: string,
  ) {}

  // hosts.sh; what up, down, load, crash and start say of their steps (with timings) goes to the log.
  run(args: string[], timeoutMs = 120_000, env: Record<string, string> = {}): Promise<string> {
    return sh(
      'bash',
      [HOSTS_SH, args[0]!, this.prefix, ...args.slice(1)],
      timeoutMs,
      env,
      ['up', 'down', 'load', 'crash', 'start'].includes(args[0]!),
    );
  }

  docker(host: string, args: string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<string> {
    return this.run(['docker', host, ...args], timeoutMs, env);
  }

  socket(host: string): string {
    return join(this.dir, `api-${host}.sock`);
  }

  // A relay inside HOST from socket(HOST) to its 127.0.0.1:3000; resolves once it listens.
  async startRelay(host: string): Promise<void> {
    const code = `const net = require('net'); const fs = require('fs'); const [, path] = process.argv;
try { fs.unlinkSync(path); } catch {}
net.createServer((c) => { const u = net.connect(3000, '127.0.0.1'); c.pipe(u); u.pipe(c);
  const end = () => { c.destroy(); u.destroy(); }; c.on('error', end); u.on('error', end); })
  .listen(path, () => console.log('relay ready'));`;
    // hosts.sh exec becomes nsenter, then node: the child's pid is the relay's.
    const child = spawn('bash', [HOSTS_SH, 'exec', this.prefix, host, process.execPath, '-e', code, this.socket(host)], {
      env: { ...process.env, PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.relays.set(host, child);
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(`the API relay in host ${host}`, async () => (out.includes('relay ready') ? true : undefined), 15_000);
  }

  // Every relay still running, by its own process (never a pid that may have been reused).
  async stopRelays(): Promise<void> {
    for (const r of this.relays.values()) {
      if (r.exitCode !== null || r.signalCode !== null) continue;
      const exited = new Promise((res) => r.once('exit', res));
      r.kill('SIGTERM');
      await exited;
    }
    this.relays.clear();
  }
}
