import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { request, type Agent } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { buildCsr } from '../../src/asn1/csr.js';
import { generateKey, privateKeyToPem } from '../../src/asn1/keys.js';
import { dn, type DistinguishedName } from '../../src/asn1/name.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { makeOperator, setupBootstrap, setupCa } from '../../src/ca/setup.js';
import { BIN, tempDir } from './run.js';

export interface TestServer {
  dir: string;
  port: number;
  mport: number;
  /** The public CRL/OCSP listener's port; 0 unless the test asked for it (`--http-port`). */
  httpPort: number;
  /** The metrics listener's port (on 127.0.0.1 unless the test gave `--metrics-listen`); 0 when it is off. */
  metricsPort: number;
  child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  stdout(): string;
  /**
   * Resolves with the first match of `re` in what the server wrote to stderr from offset `from`
   * on, as soon as it is written; rejects if the server exits first or after `timeoutMs`.
   */
  waitForStderr(re: RegExp, from?: number, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code when the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  cleanup(): void;
}

export interface StartOptions {
  /** Extra lines for the [server] table of .liteboot.toml. */
  toml?: string;
  /** Prepare the directory before the server starts (copy a database in, ...). */
  prepare?: (dir: string) => void | Promise<void>;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Shell commands run before the server is exec'd in the same process (e.g. `ulimit -f 32`). */
  shell?: string;
}

/** A CA, the bootstrap and an operator credential in a new directory, made by the library. */
export async function makeCaDir(dir: string): Promise<void> {
  const certs = new CertsDir(join(dir, 'certs'));
  await setupCa({ certs, dbPath: join(dir, 'CADB.db'), hostname: 'localhost', sans: ['127.0.0.1'], now: new Date(Date.now() - 60_000) });
  await setupBootstrap({ certs, now: new Date(Date.now() - 60_000) });
  await makeOperator({ certs, name: 'alice', now: new Date(Date.now() - 60_000) });
}

/** Runs `liteboot server start` on 127.0.0.1 with ephemeral ports and waits until it serves. */
export async function startServer(o: StartOptions = {}): Promise<TestServer> {
  const t = tempDir('liteboot-srv-');
  await makeCaDir(t.dir);
  writeFileSync(join(t.dir, '.liteboot.toml'), `[server]\nhubname = "test-hub"\nmqttport = 8883\n${o.toml ?? ''}\n`);
  await o.prepare?.(t.dir);
  return spawnServer(t.dir, t.cleanup, o.args ?? [], o.env, o.shell);
}

export async function spawnServer(dir: string, cleanup: () => void, args: string[] = [], env: NodeJS.ProcessEnv = {}, shell?: string): Promise<TestServer> {
  // The public listener has a fixed port or none (0 turns it off): off unless a test gives one.
  const http = args.includes('--http-port') ? [] : ['--http-port', '0'];
  // The metrics listener on a free port, so that servers in parallel tests do not share 9464.
  if (!args.includes('--metrics-listen')) http.push('--metrics-listen', '127.0.0.1:0');
  const argv = [BIN, 'server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...http, ...args];
  const child = spawn(shell ? 'sh' : process.execPath, shell ? ['-c', `${shell}\nexec "$0" "$@"`, process.execPath, ...argv] : argv, {
    cwd: dir,
    env: { ...process.env, CAHOSTNAME: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...watchers]) w();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitForStderr = (re: RegExp, from = 0, timeoutMs = 60_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const done = () => {
        watchers.delete(check);
        clearTimeout(timer);
      };
      const check = () => {
        const m = re.exec(err.slice(from));
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${re} on the server's stderr within ${timeoutMs} ms:\n${err.slice(from)}`));
      }, timeoutMs);
      watchers.add(check);
      check();
      void exited.then((code) => {
        if (!watchers.has(check)) return;
        check();
        if (!watchers.has(check)) return;
        done();
        reject(new Error(`the server exited (${code}) before ${re} appeared on its stderr:\n${err.slice(from)}`));
      });
    });
  const ports = await new Promise<[number, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out} ${err}`)), 60_000);
    const check = () => {
      const m = /https:\/\/localhost:(\d+)\/api\/v1 \(mTLS check on port (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve([Number(m[1]), Number(m[2])]);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out} ${err}`));
    });
  });
  return {
    dir,
    port: ports[0],
    mport: ports[1],
    httpPort: Number(/CRL and OCSP on http:\/\/[^:]+:(\d+)\//.exec(out)?.[1] ?? 0),
    metricsPort: Number(/metrics on http:\/\/(?:\[[^\]]+\]|[^:/]+):(\d+)\/metrics/.exec(out)?.[1] ?? 0),
    child,
    stderr: () => err,
    stdout: () => out,
    waitForStderr,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    cleanup,
  };
}

export interface Identity {
  cert: string;
  key: string;
}

export function identity(dir: string, name: string): Identity {
  return { cert: join(dir, 'certs', `${name}.crt`), key: join(dir, 'certs', `${name}.key`) };
}

export interface CurlResult {
  code: number;
  status: number;
  headers: string;
  body: Buffer;
  stderr: string;
}

/** Calls the server with curl, as the README does. `args` go before the URL. */
export function curl(s: { dir: string; port: number }, who: Identity | undefined, path: string, args: string[] = []): CurlResult {
  const out = join(s.dir, `curl-${randomUUID()}`);
  const r = spawnSync(
    'curl',
    [
      '-sS',
      '--cacert', join(s.dir, 'certs', 'CA.crt'),
      ...(who ? ['--cert', who.cert, '--key', who.key] : []),
      '--resolve', `localhost:${s.port}:127.0.0.1`,
      '-o', `${out}.body`,
      '-D', `${out}.headers`,
      '-w', '%{http_code}',
      ...args,
      `https://localhost:${s.port}${path}`,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  const read = (f: string) => {
    try {
      return readFileSync(f);
    } catch {
      return Buffer.alloc(0);
    }
  };
  return { code: r.status ?? -1, status: Number(r.stdout || 0), headers: read(`${out}.headers`).toString(), body: read(`${out}.body`), stderr: r.stderr };
}

export interface TlsFiles {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** The CA certificate and `who`'s certificate and key, read for node:https. */
export function tlsFiles(dir: string, who: Identity): TlsFiles {
  return { ca: readFileSync(join(dir, 'certs', 'CA.crt')), cert: readFileSync(who.cert), key: readFileSync(who.key) };
}

export interface HttpsResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The local port of the connection that carried the request. */
  localPort: number;
}

/**
 * One request with node:https (no process to spawn: cheap enough for load). Give an `agent`
 * (keep-alive, maxSockets 1) to reuse one connection per client.
 */
export function httpsRequest(
  s: { port: number },
  tls: TlsFiles,
  method: string,
  path: string,
  o: { headers?: OutgoingHttpHeaders; body?: Buffer; agent?: Agent } = {},
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: s.port,
        method,
        path,
        ...tls,
        agent: o.agent,
        headers: { ...o.headers, ...(o.body ? { 'Content-Length': o.body.length } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), localPort: req.socket?.localPort ?? 0 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

export function cborCsrBody(der: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x81, 0x59, der.length >> 8, der.length & 0xff]), der]);
}

export interface Device {
  id: string;
  key: ReturnType<typeof generateKey>;
  csr: Buffer;
  keyFile: string;
}

/** A device key and CSR (`O=Test Vendor, OU=Signing, CN=<uuid>` unless given). */
export async function newDevice(dir: string, subject?: DistinguishedName, id: string = randomUUID()): Promise<Device> {
  const key = generateKey();
  const csr = await buildCsr(subject ?? dn({ O: 'Test Vendor', OU: 'Signing', CN: id }), key);
  mkdirSync(join(dir, 'devices'), { recursive: true });
  const keyFile = join(dir, 'devices', `${id}-${randomUUID().slice(0, 8)}.key`);
  writeFileSync(keyFile, privateKeyToPem(key), { mode: 0o600 });
  return { id, key, csr, keyFile };
}

/** Writes a body file for curl --data-binary @file. */
export function bodyFile(dir: string, body: Buffer | string): string {
  const f = join(dir, `body-${randomUUID()}`);
  writeFileSync(f, body);
  return f;
}

/** A TCP port that was free a moment ago (for listeners that take no port 0, like http_port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
