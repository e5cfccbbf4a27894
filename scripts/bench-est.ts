/**
 * EST benchmark: enrolments a second over EST simpleenroll (base64 PKCS#10 in, base64 certs-only
 * PKCS#7 out) next to POST /api/v1/cr in CBOR, in one run against one server, with `--clients`
 * keep-alive clients using the bootstrap certificate; every answer is checked (EST: decoded
 * and parsed as certs-only SignedData holding one certificate; /cr: its framing, as
 * bench-server). Rounds alternate the order so that drift favours neither. Prints JSON.
 *
 *   node dist/scripts/bench-est.js [--seconds 5] [--clients 8] [--rounds 2]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCertsOnly } from '../src/asn1/pkcs7.js';
import { decodeEstBody, encodeEstBody, EST_MEDIA, mediaTypeOf } from '../src/protocol/est.js';
import { arg, csrPool, makeCa, startServer } from './lib/harness.js';
import { cborCsrBody, cpuSeconds, isCrCertificate, load, summarize, type LoadOptions, type LoadResult } from './lib/load.js';

const SECONDS = arg('--seconds', 5);
const CLIENTS = arg('--clients', 8);
const ROUNDS = arg('--rounds', 2);

function isEstCertificate(status: number, headers: Record<string, string | string[] | undefined>, body: Buffer): boolean {
  if (status !== 200 || mediaTypeOf(String(headers['content-type'] ?? '')) !== EST_MEDIA.cacerts) return false;
  const der = decodeEstBody(body);
  if (!der) return false;
  try {
    const certs = parseCertsOnly(der);
    return certs.length === 1 && certs[0]![0] === 0x30;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'liteboot-bench-est-'));
try {
  await makeCa(dir);
  const server = await startServer(dir);
  const tls = { ca: readFileSync(join(dir, 'certs', 'CA.crt')), cert: readFileSync(join(dir, 'certs', 'BOOTSTRAP.crt')), key: readFileSync(join(dir, 'certs', 'BOOTSTRAP.key')) };
  // A fresh device id for every request (a pool larger than either endpoint reaches on this machine).
  const size = 12_000 * ROUNDS;
  const [crPool, estPool] = await Promise.all([csrPool(size, Math.random), csrPool(size, Math.random)]);
  const cr = crPool.map(cborCsrBody);
  const est = estPool.map(encodeEstBody);
  const base = { port: server.port, tls, seconds: SECONDS, clients: CLIENTS, keepAlive: true };
  const runs: Record<'cr' | 'est', LoadOptions> = {
    cr: { ...base, request: (n) => ({ path: '/api/v1/cr', headers: { 'Content-Type': 'application/cbor' }, body: cr[n % cr.length]! }), check: (status, _h, data) => isCrCertificate(status, data) },
    est: { ...base, request: (n) => ({ path: '/.well-known/est/simpleenroll', headers: { 'Content-Type': EST_MEDIA.csr }, body: est[n % est.length]! }), check: isEstCertificate },
  };
  const total: Record<'cr' | 'est', LoadResult & { serverCpu: number }> = {
    cr: { ok: 0, errors: 0, seconds: 0, latencies: [], serverCpu: 0 },
    est: { ok: 0, errors: 0, seconds: 0, latencies: [], serverCpu: 0 },
  };
  let offset = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const which of round % 2 === 0 ? (['cr', 'est'] as const) : (['est', 'cr'] as const)) {
      const start = offset;
      const cpu0 = cpuSeconds(server.child.pid!);
      const r = await load({ ...runs[which], request: (n) => runs[which].request(start + n) });
      offset += r.ok + r.errors;
      const t = total[which];
      t.ok += r.ok;
      t.errors += r.errors;
      t.seconds += r.seconds;
      t.latencies.push(...r.latencies);
      t.serverCpu += cpuSeconds(server.child.pid!) - cpu0;
    }
  }
  server.child.kill('SIGTERM');
  await server.exited;
  const out = (t: LoadResult & { serverCpu: number }) => {
    const s = summarize(t);
    return { enrolmentsPerSecond: Math.round(s.rate), ok: s.ok, errors: s.errors, latencyMs: { p50: s.p50, p99: s.p99 }, serverCoresBusy: Number((t.serverCpu / t.seconds).toFixed(2)) };
  };
  const result = {
    clients: CLIENTS,
    keepAlive: true,
    secondsPerRound: SECONDS,
    rounds: ROUNDS,
    cr: out(total.cr),
    est: out(total.est),
    estOverCr: Number((summarize(total.est).rate / summarize(total.cr).rate).toFixed(3)),
  };
  console.log(JSON.stringify(result, null, 2));
  if (total.cr.errors + total.est.errors > 0 || total.cr.ok === 0 || total.est.ok === 0) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
