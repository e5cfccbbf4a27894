/** What the reliability scripts share: a CA directory, a server process, a device-side client. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createECDH, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCsr } from '../../src/asn1/csr.js';
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
  // The public listener has a fixed default port (8080): off unless the caller gives one.
  const http = args.includes('--http-port') ? [] : ['--http-port', '0'];
  if (!args.includes('--metrics-listen')) http.push('--metrics-listen', '127.0.0.1:0');
  const child = spawn(process.execPath, [BIN, 'server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...http, ...args], {
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

/**
 * `n` device CSRs (CN a UUID), over 8 keys, all drawn from `rnd`: the same seed gives the same
 * keys and UUIDs. Only the ECDSA signatures differ from run to run (their nonce is random).
 */
export async function csrPool(n: number, rnd: () => number): Promise<Buffer[]> {
  const keys = Array.from({ length: 8 }, () => seededKey(rnd));
  const names = Array.from({ length: n }, () => seededUuid(rnd));
  return Promise.all(names.map((cn, i) => buildCsr(dn({ O: 'Test Vendor', OU: 'Signing', CN: cn }), keys[i % keys.length]!)));
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

export function seededBytes(rnd: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** A random (version 4) UUID drawn from `rnd` (RFC 9562 §5.4). */
export function seededUuid(rnd: () => number): string {
  const b = seededBytes(rnd, 16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// The order of the P-256 group (SEC 2 §2.4.2): a private key is an integer in [1, n-1].
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** A P-256 private key whose scalar is drawn from `rnd`. */
export function seededKey(rnd: () => number): KeyObject {
  for (;;) {
    const d = seededBytes(rnd, 32);
    const v = BigInt('0x' + d.toString('hex'));
    if (v === 0n || v >= P256_N) continue;
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    const pub = ecdh.getPublicKey(null, 'uncompressed');
    const jwk = { kty: 'EC', crv: 'P-256', d: d.toString('base64url'), x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') };
    return createPrivateKey({ key: jwk, format: 'jwk' });
  }
}

/**
 * The end of every harness: a one-line verdict (with the reasons if it failed), then one line of
 * JSON a script can read (serials as decimal strings), then the exit code.
 */
export function finish(harness: string, reasons: string[], result: Record<string, unknown>): never {
  const ok = reasons.length === 0;
  console.log(ok ? `${harness}: passed` : `${harness}: FAILED: ${reasons.join('; ')}`);
  console.log(JSON.stringify({ harness, ok, reason: ok ? null : reasons.join('; '), ...result }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  process.exit(ok ? 0 : 1);
}

/** User plus system CPU seconds a process has used (/proc/PID/stat fields 14 and 15, in 1/100 s). */
export function cpuSecondsOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A numeric flag (`--cycles 4`); anything but a finite number is a usage error. */
export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) {
    console.error(`${name} needs a number, got ${process.argv[i + 1] ?? 'nothing'}`);
    process.exit(2);
  }
  return v;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
