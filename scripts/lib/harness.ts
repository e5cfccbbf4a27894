/** What the reliability scripts share: a CA directory, a server process, a device-side client. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCsr } from '../../src/asn1/csr.js';
import { generateKey } from '../../src/asn1/keys.js';
import { dn } from '../../src/asn1/name.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { makeOperator, setupBootstrap, setupCa } from '../../src/ca/setup.js';
import { ApiClient } from '../../src/client/api-client.js';

export const BIN = fileURLToPath(new URL('../../../bin/liteboot.js', import.meta.url));

export async function makeCa(dir: string): Promise<void> {
  const certs = new CertsDir(join(dir, 'certs'));
  const now = new Date(Date.now() - 60_000);
  await setupCa({ certs, dbPath: join(dir, 'CADB.db'), hostname: 'localhost', sans: ['127.0.0.1'], now });
  await setupBootstrap({ certs, now });
  await makeOperator({ certs, name: 'ops', now });
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  mport: number;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `liteboot server start` in `dir` on 127.0.0.1 (ports 0 unless given). */
export async function startServer(dir: string, args: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 4_000_000) err = err.slice(-1_000_000);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const [port, mport] = await new Promise<[number, number]>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the server did not start: ${out} ${err}`)), 30_000);
    child.stdout!.on('data', () => {
      const m = /https:\/\/localhost:(\d+)\/api\/v1 \(mTLS check on port (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve([Number(m[1]), Number(m[2])]);
      }
    });
    void exited.then((c) => {
      clearTimeout(t);
      reject(new Error(`the server exited (${c}) while starting: ${err.slice(-2000)}`));
    });
  });
  return { child, port, mport, stderr: () => err, exited };
}

export function client(dir: string, port: number, who: 'BOOTSTRAP' | 'OPERATOR-ops' | string = 'BOOTSTRAP', connections = 1): ApiClient {
  const f = (n: string) => readFileSync(join(dir, 'certs', n));
  return new ApiClient({ host: 'localhost', port, ca: f('CA.crt'), cert: f(`${who}.crt`), key: f(`${who}.key`), connections, timeoutMs: 15_000 });
}

export async function csrPool(n: number): Promise<Buffer[]> {
  const keys = Array.from({ length: 8 }, () => generateKey());
  return Promise.all(Array.from({ length: n }, (_, i) => buildCsr(dn({ O: 'Test Vendor', OU: 'Signing', CN: randomUUID() }), keys[i % keys.length]!)));
}

/** A seeded PRNG (mulberry32), so a failing run can be replayed with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
