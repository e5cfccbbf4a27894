/**
 * Debian's haproxy in front of liteboot servers, for the deployment test: the configuration text
 * (the README shows exactly what `haproxyConfig` makes for its example addresses: the test
 * checks that), and a foreground haproxy process stopped by its PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export interface HaproxyBackend {
  name: string;
  /** host:port of the server's REST port. */
  address: string;
}

/**
 * TCP mode, TLS passed through: each liteboot server terminates TLS itself (its SERVER.crt must
 * name the host devices use: the balancer's name) and sees the device's certificate. A `check`
 * on each server takes a dead one out within `inter * fall`; `retries` + `redispatch` send a
 * connection that cannot reach one server to another one meanwhile.
 */
export function haproxyConfig(o: { bind: string; backends: readonly HaproxyBackend[] }): string {
  return `global
    log stderr format raw local0 info
    maxconn 4096

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # a connection that cannot reach a server is tried again, on another server
    retries 2
    option redispatch

frontend liteboot_api
    bind ${o.bind}
    default_backend liteboot_api

backend liteboot_api
    balance roundrobin
    default-server check inter 500ms fall 2 rise 2
${o.backends.map((b) => `    server ${b.name} ${b.address}`).join('\n')}
`;
}

/** The README's example: two servers on their default REST port behind one address. */
export const README_HAPROXY = { bind: ':1443', backends: [{ name: 'liteboot-a', address: '10.0.0.11:1443' }, { name: 'liteboot-b', address: '10.0.0.12:1443' }] } as const;

export function haproxyUnavailable(): string | undefined {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const why = 'no haproxy on PATH; install Debian package haproxy';
  // .ci/run installs haproxy with PostgreSQL and says so with LITEBOOT_REQUIRE_PG=1: then a missing one fails.
  if (process.env.LITEBOOT_REQUIRE_HAPROXY === '1' || process.env.LITEBOOT_REQUIRE_PG === '1') throw new Error(`haproxy is required here (LITEBOOT_REQUIRE_PG=1) but ${why}`);
  return why;
}

export interface Haproxy {
  child: ChildProcess;
  stderr(): string;
  /** Resolves when `re` appears on haproxy's stderr (its log and warnings), rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts haproxy in the foreground (-db) with `config`, and resolves once its frontend accepts connections. */
export async function startHaproxy(dir: string, config: string, port: number): Promise<Haproxy> {
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const check = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy -c refused the configuration:\n${check.stdout}${check.stderr}`);
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const watchers = new Set<() => void>();
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...watchers]) w();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const waitFor = (re: RegExp, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const w = () => {
        if (re.test(err)) {
          watchers.delete(w);
          clearTimeout(t);
          resolve();
        }
      };
      const t = setTimeout(() => {
        watchers.delete(w);
        reject(new Error(`no ${re} from haproxy within ${timeoutMs} ms:\n${err}`));
      }, timeoutMs);
      watchers.add(w);
      w();
    });
  // Ready when the frontend accepts: each refused attempt is followed by the next (an event, not a timer).
  for (let n = 0; ; n++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}):\n${err}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (n > 2000) throw new Error(`haproxy did not listen on ${port}:\n${err}`);
    await new Promise((r) => setImmediate(r));
  }
  return {
    child,
    stderr: () => err,
    waitFor,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
