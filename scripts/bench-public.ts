/**
 * Public listener benchmark (the revocation issue): OCSP responses/s and CRL fetches/s with 8
 * keep-alive clients against `liteboot server start`, every answer checked; then the CRL's build
 * time and size with 100k revoked entries, in-process. Prints one JSON object.
 *
 *   node dist/scripts/bench-public.js [--seconds 5] [--clients 8] [--revoked 100000]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCertificate } from '../src/asn1/certificate.js';
import { toPem } from '../src/asn1/pem.js';
import { CertsDir } from '../src/ca/certs-dir.js';
import { CrlPublisher } from '../src/ca/crl-publisher.js';
import { openStore } from '../src/store/sqljs-store.js';
import { arg, client, csrPool, makeCa, startServer } from './lib/harness.js';

const SECONDS = arg('--seconds', 5);
const CLIENTS = arg('--clients', 8);
const REVOKED = arg('--revoked', 100_000);

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** `clients` loops of one request at a time for `seconds`; `check` validates each answer. */
async function load(port: number, make: () => { method: string; path: string; body?: Buffer; headers?: Record<string, string> }, check: (status: number, body: Buffer) => boolean): Promise<{ rate: number; ok: number; errors: number; p99Ms: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const end = performance.now() + SECONDS * 1000;
  let ok = 0;
  let errors = 0;
  const lat: number[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const r = make();
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, method: r.method, path: r.path, agent, headers: r.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          lat.push(performance.now() - t0);
          if (check(res.statusCode ?? 0, Buffer.concat(chunks))) ok++;
          else errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(r.body);
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < end) await one();
  }));
  const secs = (performance.now() - started) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { rate: Math.round(ok / secs), ok, errors, p99Ms: Number((lat[Math.floor(lat.length * 0.99)] ?? 0).toFixed(2)) };
}

const dir = mkdtempSync(join(tmpdir(), 'liteboot-bench-public-'));
try {
  await makeCa(dir);
  const http = await freePort();
  const server = await startServer(dir, ['--http-port', String(http)]);
  const api = client(dir, server.port);
  const ops = client(dir, server.port, 'OPERATOR-ops');
  const [good, bad] = await csrPool(2, Math.random);
  const derGood = await api.enrol(good!, 'cbor');
  const derBad = await api.enrol(bad!, 'cbor');
  await ops.revoke(parseCertificate(derBad).serial, 1);
  api.close();
  ops.close();
  // The requests come from openssl, an independent client; the bench replays them.
  const ca = join(dir, 'certs', 'CA.crt');
  writeFileSync(join(dir, 'g.crt'), toPem('CERTIFICATE', derGood));
  writeFileSync(join(dir, 'r.crt'), toPem('CERTIFICATE', derBad));
  const reqGood = join(dir, 'good.req');
  const reqBoth = join(dir, 'both.req');
  for (const [out, certs] of [[reqGood, ['g.crt']], [reqBoth, ['g.crt', 'r.crt']]] as const) {
    const r = spawnSync('openssl', ['ocsp', '-issuer', ca, ...certs.flatMap((c) => ['-cert', join(dir, c)]), '-nonce', '-reqout', out]);
    if (r.status !== 0) throw new Error(`openssl ocsp: ${r.stderr}`);
  }
  const bodyGood = readFileSync(reqGood);
  // A successful OCSPResponse starts 30 82 LL LL 0a 01 00: responseStatus successful (0).
  const okOcsp = (status: number, body: Buffer) => status === 200 && body.length > 100 && body[0] === 0x30 && body.subarray(4, 7).equals(Buffer.from([0x0a, 1, 0]));
  const ocsp = await load(http, () => ({ method: 'POST', path: '/ocsp', body: bodyGood, headers: { 'Content-Type': 'application/ocsp-request' } }), okOcsp);
  const b64 = encodeURIComponent(readFileSync(reqBoth).toString('base64'));
  const ocspGet = await load(http, () => ({ method: 'GET', path: `/ocsp/${b64}` }), okOcsp);
  const crlDer = await (await fetch(`http://127.0.0.1:${http}/crl`)).arrayBuffer();
  const crlFetch = await load(http, () => ({ method: 'GET', path: '/crl' }), (status, body) => status === 200 && body.length === crlDer.byteLength);
  const etag = (await fetch(`http://127.0.0.1:${http}/crl`)).headers.get('etag')!;
  const crlPoll = await load(http, () => ({ method: 'GET', path: '/crl', headers: { 'If-None-Match': etag } }), (status) => status === 304);
  server.child.kill('SIGTERM');
  await server.exited;

  // The CRL at scale, in-process: entries added as revocations arrive, one rebuild.
  const store = await openStore({ path: join(dir, 'crl-bench.db') });
  const ca2 = new CertsDir(join(dir, 'certs')).loadCa();
  const pub = new CrlPublisher({ issuer: ca2.issuer, store, clock: () => new Date(), days: 7 });
  const base = 1_796_000_000_000_000_000n;
  const t0 = performance.now();
  for (let i = 0; i < REVOKED; i++) pub.add(base + BigInt(i), new Date(1_764_000_000_000 + i * 1000), i % 3 === 0 ? 1 : undefined);
  const addMs = performance.now() - t0;
  const builds: number[] = [];
  let crl;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    crl = await pub.rebuild();
    builds.push(performance.now() - t);
  }
  pub.stop();
  await store.close();
  builds.sort((a, b) => a - b);
  writeFileSync(join(dir, 'big.crl'), crl!.der);
  const v = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'big.crl'), '-CAfile', ca, '-noout']);
  console.log(
    JSON.stringify(
      {
        clients: CLIENTS,
        seconds: SECONDS,
        ocspPost: ocsp,
        ocspGetTwoCertIds: ocspGet,
        crlFetch: { ...crlFetch, bytes: crlDer.byteLength },
        crlPoll304: crlPoll,
        crlAtScale: { revoked: REVOKED, addAllMs: Math.round(addMs), rebuildMedianMs: Number(builds[2]!.toFixed(1)), bytes: crl!.der.length, opensslVerifies: v.status === 0 },
      },
      null,
      2,
    ),
  );
  if (ocsp.errors + ocspGet.errors + crlFetch.errors + crlPoll.errors > 0 || v.status !== 0) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
