/**
 * What the server benchmarks (bench-server, bench-pg) share: a pool of CBOR CSRs made before
 * timing starts, and `liteboot server start` on free ports in a work directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { buildCsr } from '../../src/asn1/csr.js';
import { generateKey } from '../../src/asn1/keys.js';
import { dn } from '../../src/asn1/name.js';
import { cborCsrBody } from './load.js';

const BIN = fileURLToPath(new URL('../../../bin/liteboot.js', import.meta.url));

/** CSRs made before timing starts (16 keys, a fresh device id each), so the load generator spends its CPU on requests. */
export async function csrPool(n: number): Promise<Buffer[]> {
  const keys = Array.from({ length: 16 }, () => generateKey());
  return Promise.all(Array.from({ length: n }, async (_, i) => cborCsrBody(await buildCsr(dn({ O: 'Test Vendor', OU: 'Signing', CN: randomUUID() }), keys[i % keys.length]!))));
}

export interface BenchServerOptions {
  /** `--metrics-listen`: '' (default) for none. */
  metricsListen?: string;
  /** More `server start` arguments (`--db URL`). */
  args?: string[];
  /** Node's own flags, before the script (`--cpu-prof`). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Starts the server in `dir` (its certs/ made already); resolves with the API port it printed. */
export async function startServer(dir: string, o: BenchServerOptions = {}): Promise<{ child: ChildProcess; port: number }> {
  const args = ['server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0', '--http-port', '0', '--metrics-listen', o.metricsListen ?? '', ...(o.args ?? [])];
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), BIN, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'], env: o.env ?? process.env });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /https:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`server exited (${c}): ${out}`)));
  });
  return { child, port };
}

export async function stopServer(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}
