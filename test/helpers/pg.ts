/**
 * A throwaway PostgreSQL cluster for tests: initdb into a fresh temp directory, a free loopback
 * port and a unix socket directory of its own, fsync on (durability is what the tests check),
 * stopped by PID. No mock: the real server the deployment uses.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { freePort } from './server.js';

export interface PgCluster {
  /** postgres://liteboot:PASSWORD@127.0.0.1:PORT/postgres (the maintenance database). */
  url: string;
  port: number;
  user: string;
  password: string;
  /** The postmaster's PID (changes across restart()). */
  pid: number;
  /** Fast shutdown (SIGINT) by PID, waits for the exit, removes the directory. */
  stop(): Promise<void>;
  /** Fast shutdown and start again on the same port and data directory (for fault tests). */
  restart(): Promise<void>;
  /**
   * Stops the postmaster without starting it again (restart's first half, for outage tests).
   * SIGINT: fast shutdown; SIGQUIT: immediate shutdown, no checkpoint (crash recovery at resume()).
   */
  halt(signal?: 'SIGINT' | 'SIGQUIT'): Promise<void>;
  /** Starts it again after halt(). */
  resume(): Promise<void>;
  /** A fresh empty database on this cluster; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** With `tls`: the CA certificate (PEM file) that signed the server's certificate for 127.0.0.1. */
  caFile?: string;
}

export interface StartOptions {
  /** TLS on (ssl=on) with a certificate for IP 127.0.0.1 signed by a throwaway CA (made with openssl). */
  tls?: boolean;
}

const INITDB = 'initdb';

/** The directory holding initdb and postgres: on PATH, else the newest /usr/lib/postgresql/N/bin. */
export function pgBinDir(): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d && existsSync(join(d, INITDB)) && existsSync(join(d, 'postgres'))) return d;
  }
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : undefined;
}

/**
 * Why PostgreSQL tests cannot run here, or undefined when they can. With LITEBOOT_REQUIRE_PG=1
 * (set by .ci/run, which installs PostgreSQL) a missing PostgreSQL is a failure, not a skip.
 */
export function pgUnavailable(): string | undefined {
  if (pgBinDir()) return undefined;
  const why = 'no PostgreSQL binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin; install Debian package postgresql';
  if (process.env.LITEBOOT_REQUIRE_PG === '1') throw new Error(`LITEBOOT_REQUIRE_PG=1 but ${why}`);
  return why;
}

interface Owner {
  uid?: number;
  gid?: number;
}

/** initdb and postgres refuse to run as root: then they run as the `postgres` OS user. */
function owner(): Owner {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error('running as root and there is no `postgres` OS user to run PostgreSQL as');
    return Number(r.stdout.trim());
  };
  return { uid: id('-u'), gid: id('-g') };
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  // A test process that dies leaves no cluster behind (immediate shutdown: the data is throwaway).
  for (const c of live) if (c.pid) try { process.kill(c.pid, 'SIGQUIT'); } catch { /* gone */ }
});

export async function startPostgres(o: StartOptions = {}): Promise<PgCluster> {
  const bin = pgBinDir();
  if (!bin) throw new Error(pgUnavailable() ?? 'no PostgreSQL binaries');
  const who = owner();
  const dir = mkdtempSync(join(tmpdir(), 'liteboot-pg-'));
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  mkdirSync(sock);
  const user = 'liteboot';
  const password = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (who.uid !== undefined) {
    for (const p of [dir, sock, pwfile]) chownSync(p, who.uid, who.gid!);
  }
  chmodSync(dir, 0o700);
  if (who.uid !== undefined) {
    // initdb refuses root: it runs as `postgres` through runuser (its data is not worth a sync: --no-sync).
    const r = spawnSync('runuser', ['-u', 'postgres', '--', join(bin, INITDB), '-D', data, '-U', user, `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.stdout}`);
  } else {
    const r = spawnSync(join(bin, INITDB), ['-D', data, '-U', user, `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.stdout}`);
  }
  rmSync(pwfile);
  const tlsArgs: string[] = [];
  let caFile: string | undefined;
  if (o.tls) {
    caFile = join(dir, 'ca.crt');
    const ssl = (args: string[]) => {
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
    };
    const key = join(dir, 'server.key');
    ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', caFile, '-subj', '/CN=liteboot test database CA', '-days', '2']);
    ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
    ssl(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', caFile, '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'server.crt'), '-days', '2', '-extfile', writeExt(dir)]);
    chmodSync(key, 0o600); // postgres refuses a key others can read
    if (who.uid !== undefined) chownSync(key, who.uid, who.gid!);
    chmodSync(caFile, 0o644);
    tlsArgs.push('-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.crt')}`, '-c', `ssl_key_file=${key}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = (): Promise<void> => {
    // spawn with uid/gid rather than through runuser: then child.pid is the postmaster itself,
    // the PID the tests stop it by and kill -9 in fault tests.
    const c = spawn(
      join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-k', sock, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on', '-c', 'max_connections=200', '-c', 'shared_buffers=32MB', '-c', 'logging_collector=off', ...tlsArgs],
      { stdio: ['ignore', 'ignore', 'pipe'], ...who },
    );
    live.add(c);
    child = c;
    exited = new Promise((r) => c.once('exit', () => {
      live.delete(c);
      r();
    }));
    let log = '';
    return new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        log += d.toString();
        // The postmaster's own readiness line: the event we wait for.
        if (log.includes('database system is ready to accept connections')) {
          c.stderr!.off('data', onData);
          c.stderr!.resume(); // keep draining its log so it never blocks on a full pipe
          c.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`postgres exited (${code ?? signal}) before it was ready:\n${log}`));
      c.stderr!.on('data', onData);
      c.once('exit', onExit);
    });
  };

  const halt = async (signal: 'SIGINT' | 'SIGQUIT' = 'SIGINT') => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid!, signal); // SIGINT, fast shutdown: rolls back open transactions, checkpoints
    await exited;
  };

  await launch();
  const url = `postgres://${user}:${password}@127.0.0.1:${port}/postgres`;
  let dbs = 0;
  const cluster: PgCluster = {
    url,
    port,
    user,
    password,
    get pid() {
      return child!.pid!;
    },
    async stop() {
      await halt('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await halt('SIGINT');
      await launch();
    },
    halt,
    resume: launch,
    caFile,
    async createDatabase(name = `t${process.pid}_${dbs++}_${randomBytes(3).toString('hex')}`) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://${user}:${password}@127.0.0.1:${port}/${name}`;
    },
  };
  return cluster;
}

/** The server certificate's extensions: an IP subjectAltName, as verify-full checks it. */
function writeExt(dir: string): string {
  const p = join(dir, 'server.ext');
  writeFileSync(p, 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n');
  return p;
}
