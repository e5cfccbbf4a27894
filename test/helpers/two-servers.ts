/**
 * Two real `liteboot server start` processes on one PostgreSQL database: one CA (a certs/ made
 * once, copied into each server's directory), each server with its own directory (audit log,
 * crl_file), ports and process.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { tempDir } from './run.js';
import { freePort, makeCaDir, spawnServer, type Identity, type TestServer } from './server.js';

export interface Pair {
  /** Where certs/ was made (and any files a test shares between the servers). */
  root: string;
  a: TestServer;
  b: TestServer;
  /** Starts (again) a server in `dir` with the pair's settings, e.g. after a kill. */
  spawn(dir: string): Promise<TestServer>;
  /** Stops both servers and removes every directory. */
  stop(): Promise<void>;
}

export interface PairOptions {
  /** The PostgreSQL database both servers use. */
  db: string;
  /** Extra lines for [server] (and tables after it) of each server's .liteboot.toml. */
  toml?: string | (() => string);
  env?: NodeJS.ProcessEnv;
  /** Runs once certs/ exists in root, before the servers start (extra credentials, a fake cloud service...). */
  prepare?: (root: string) => void | Promise<void>;
}

export async function startPair(o: PairOptions): Promise<Pair> {
  const root = tempDir('liteboot-pair-');
  const dirs = [tempDir('liteboot-a-'), tempDir('liteboot-b-')];
  await makeCaDir(root.dir);
  await o.prepare?.(root.dir);
  const http = new Map<string, number>();
  const spawn = async (dir: string) => {
    if (!http.has(dir)) http.set(dir, await freePort());
    return spawnServer(dir, () => {}, ['--http-port', String(http.get(dir))], o.env);
  };
  for (const d of dirs) {
    cpSync(join(root.dir, 'certs'), join(d.dir, 'certs'), { recursive: true });
    writeFileSync(join(d.dir, '.liteboot.toml'), `[server]\nhubname = "test-hub"\nmqttport = 8883\ndb = "${o.db}"\n${typeof o.toml === 'function' ? o.toml() : (o.toml ?? '')}\n`);
  }
  // Both at once: the schema is migrated once, under the store's advisory lock.
  const [a, b] = await Promise.all(dirs.map((d) => spawn(d.dir)));
  const pair: Pair = {
    root: root.dir,
    a: a!,
    b: b!,
    spawn,
    stop: async () => {
      await Promise.all([pair.a.stop(), pair.b.stop()]);
      for (const d of [root, ...dirs]) d.cleanup();
    },
  };
  return pair;
}

/** The check listener's verdict line for `who` (the mTLS listener writes one line, then closes). */
export function checkVerdict(s: { mport: number; dir: string }, who: Identity, caDir = s.dir): Promise<string> {
  return new Promise((resolve, reject) => {
    let line = '';
    const sock = connect({ host: '127.0.0.1', port: s.mport, servername: 'localhost', ca: readFileSync(join(caDir, 'certs', 'CA.crt')), cert: readFileSync(who.cert), key: readFileSync(who.key) }, () => {});
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (line += d));
    sock.on('end', () => {
      sock.destroy();
      resolve(line.trim());
    });
    sock.on('error', reject);
  });
}
