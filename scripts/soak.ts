/**
 * Soak (issue 7): mixed traffic (enrol, status, device status, copy, key update, revoke) at a
 * steady rate for a long time, sampling the server's resident memory, its CPU time and the
 * latency each second. Prints the series and a summary; fails on any error, on memory that grows
 * beyond what the database itself grew by (the lowest RSS of the last quarter against the lowest
 * of the first quarter after warm-up, so that where the collector happens to run does not
 * matter: more than twice the database's growth plus 32 MB is a leak), or on work per request
 * that drifts: the server's CPU time per answered request in the last fifth more than 1.5 times
 * that of the first fifth after warm-up. Latency is printed, not judged: on a shared machine it follows the neighbours' load
 * (a 60 s run here saw the median per-second p99 go from 39 to 108 ms with the server unchanged),
 * while CPU time per request is the server's own cost.
 *
 *   node dist/scripts/soak.js [--seconds 600] [--rate 200] [--seed N]
 *
 * The seed chooses the device keys and UUIDs and the sequence of operations; --seed N replays
 * those (which issued certificate a query picks depends on the order answers came back in).
 * Prints one JSON line at the end and exits non-zero on a failure.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCsr } from '../src/asn1/csr.js';
import { dn } from '../src/asn1/name.js';
import { arg, client, cpuSecondsOf, csrPool, finish, makeCa, prng, rssOf, seededKey, seededUuid, sleep, startServer } from './lib/harness.js';
import type { ApiClient } from '../src/client/api-client.js';

const SECONDS = arg('--seconds', 600);
const RATE = arg('--rate', 200);
const SEED = arg('--seed', 1);
const rnd = prng(SEED);
console.log(`soak: ${SECONDS} s at ${RATE} requests/s, seed ${SEED}`);

const dir = mkdtempSync(join(tmpdir(), 'liteboot-soak-'));
const reasons: string[] = [];
const summary: Record<string, unknown> = {};
try {
  await makeCa(dir);
  const srv = await startServer(dir);
  const boot = client(dir, srv.port, 'BOOTSTRAP', 16);
  const ops = client(dir, srv.port, 'OPERATOR-ops', 4);
  const pool = await csrPool(500, rnd);
  // Devices that exist: serial -> uuid, for status, copy, key update and revocation.
  const issued: { serial: bigint; uuid: string }[] = [];
  const enrol = async () => {
    const der = await boot.enrol(pool[Math.floor(rnd() * pool.length)]!, 'cbor');
    const x = new X509Certificate(der);
    issued.push({ serial: BigInt('0x' + x.serialNumber), uuid: /CN=([0-9a-f-]{36})/.exec(x.subject)![1]! });
  };
  for (let i = 0; i < 50; i++) await enrol();
  // Key updates need a device's own credential: one device, made here, rekeyed again and again.
  const devKey = seededKey(rnd);
  const devId = seededUuid(rnd);
  const devCsr = await buildCsr(dn({ CN: devId }), devKey);
  const devDer = await boot.enrol(devCsr, 'cbor');
  const { ApiClient: Client } = await import('../src/client/api-client.js');
  const { readFileSync } = await import('node:fs');
  const { toPem } = await import('../src/asn1/pem.js');
  const { privateKeyToPem } = await import('../src/asn1/keys.js');
  const device: ApiClient = new Client({ host: 'localhost', port: srv.port, ca: readFileSync(join(dir, 'certs/CA.crt')), cert: Buffer.from(toPem('CERTIFICATE', devDer)), key: Buffer.from(privateKeyToPem(devKey)), connections: 2 });

  const pickIssued = () => issued[Math.floor(rnd() * issued.length)]!;
  const ops_: [number, () => Promise<unknown>][] = [
    [40, enrol],
    [20, () => boot.certStatus(pickIssued().serial).catch((e: Error) => (/invalid serial/.test(e.message) ? undefined : Promise.reject(e)))],
    [15, () => boot.deviceStatus(pickIssued().uuid)],
    [10, () => boot.certCopy(pickIssued().serial).catch((e: Error) => (/invalid serial/.test(e.message) ? undefined : Promise.reject(e)))],
    [10, () => device.keyUpdate(devCsr, 'cbor')],
    [5, async () => {
      const victim = issued.splice(Math.floor(rnd() * issued.length), 1)[0];
      if (victim && issued.length > 20) await ops.revoke(victim.serial, 1);
      else if (victim) issued.push(victim);
    }],
  ];
  const total = ops_.reduce((n, [w]) => n + w, 0);
  const pickOp = () => {
    let r = rnd() * total;
    for (const [w, f] of ops_) if ((r -= w) < 0) return f;
    return ops_[0]![1];
  };

  const series: { t: number; rss: number; cpu: number; n: number; p50: number; p99: number; errors: number }[] = [];
  let lat: number[] = [];
  let errors = 0;
  let lastError = '';
  let inFlight = 0;
  let drained: (() => void) | undefined;
  // What the database holds on disk: the snapshot plus its journal.
  const dbSize = () =>
    readdirSync(dir)
      .filter((f) => f === 'CADB.db' || f.startsWith('CADB.db.lbj.'))
      .reduce((n, f) => {
        try {
          return n + statSync(join(dir, f)).size;
        } catch {
          return n;
        }
      }, 0);
  const dbStart = dbSize();
  const cpuStart = cpuSecondsOf(srv.child.pid!);
  const start = performance.now();
  let sent = 0;
  console.log('   t  rss(MB)  cpu(s)  req/s  p50(ms)  p99(ms)  errors');
  const sampler = setInterval(() => {
    const l = lat.sort((a, b) => a - b);
    lat = [];
    const q = (p: number) => (l.length ? l[Math.min(l.length - 1, Math.floor(p * l.length))]! : 0);
    const s = { t: series.length + 1, rss: rssOf(srv.child.pid!) / 1e6, cpu: cpuSecondsOf(srv.child.pid!) - cpuStart, n: l.length, p50: q(0.5), p99: q(0.99), errors };
    series.push(s);
    console.log(`${String(s.t).padStart(4)}  ${s.rss.toFixed(0).padStart(7)}  ${s.cpu.toFixed(2).padStart(6)}  ${String(s.n).padStart(5)}  ${s.p50.toFixed(1).padStart(7)}  ${s.p99.toFixed(1).padStart(7)}  ${String(s.errors).padStart(6)}`);
  }, 1000);
  // Open loop: a request every 1/RATE s, whatever the answers take (at most 256 in flight).
  while (performance.now() - start < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * RATE);
    while (sent < due && inFlight < 256) {
      sent++;
      inFlight++;
      const t0 = performance.now();
      pickOp()()
        .then(() => lat.push(performance.now() - t0))
        .catch((e: Error) => {
          errors++;
          lastError = e.message;
        })
        .finally(() => {
          if (--inFlight === 0 && drained) drained();
        });
    }
    await sleep(2);
  }
  if (inFlight > 0) await new Promise<void>((r) => (drained = r));
  clearInterval(sampler);
  boot.close();
  ops.close();
  device.close();

  // Summary: memory floor growth and trend (less what the database itself grew by), CPU per request, latency.
  const warm = series.slice(Math.min(10, Math.floor(series.length / 4)));
  const half = warm.slice(Math.floor(warm.length / 2));
  const slope = (pts: { t: number; rss: number }[]) => {
    const n = pts.length;
    const mx = pts.reduce((a, p) => a + p.t, 0) / n;
    const my = pts.reduce((a, p) => a + p.rss, 0) / n;
    const num = pts.reduce((a, p) => a + (p.t - mx) * (p.rss - my), 0);
    const den = pts.reduce((a, p) => a + (p.t - mx) ** 2, 0);
    return den ? (num / den) * 60 : 0; // MB per minute
  };
  const dbGrowthMB = (dbSize() - dbStart) / 1e6;
  const perMinuteDb = (dbGrowthMB / Math.max(1, series.length)) * 60;
  const rssSlope = half.length > 5 ? slope(half) : 0;
  const window = Math.max(1, Math.floor(warm.length / 5));
  const p99 = (pts: typeof series) => pts.map((p) => p.p99).sort((a, b) => a - b)[Math.floor(pts.length / 2)] ?? 0;
  const first = p99(warm.slice(0, window));
  const last = p99(warm.slice(-window));
  // Server CPU milliseconds per answered request over a stretch of the series (cpu is cumulative).
  const cpuPer = (pts: typeof series) => {
    if (pts.length === 0) return 0;
    const before = series[series.indexOf(pts[0]!) - 1]?.cpu ?? 0;
    const n = pts.reduce((a, p) => a + p.n, 0);
    return n ? ((pts[pts.length - 1]!.cpu - before) * 1000) / n : 0;
  };
  const cpuFirst = cpuPer(warm.slice(0, window));
  const cpuLast = cpuPer(warm.slice(-window));
  const quarter = Math.max(1, Math.ceil(warm.length / 4));
  const floorOf = (pts: typeof series) => Math.min(...pts.map((p) => p.rss));
  const floorStart = floorOf(warm.slice(0, quarter));
  const floorEnd = floorOf(warm.slice(-quarter));
  const spanSeconds = Math.max(1, warm.length - quarter);
  const floorAllowed = 2 * ((perMinuteDb * spanSeconds) / 60) + 32;
  const rssStart = warm[0]?.rss ?? 0;
  const rssEnd = warm[warm.length - 1]?.rss ?? 0;
  console.log(`summary: ${sent} requests, ${errors} errors${errors ? ` (last: ${lastError})` : ''}`);
  console.log(`memory: ${rssStart.toFixed(0)} MB after warm-up -> ${rssEnd.toFixed(0)} MB at the end; lowest ${floorStart.toFixed(0)} MB in the first quarter, ${floorEnd.toFixed(0)} MB in the last (${(floorEnd - floorStart).toFixed(0)} MB, allowed ${floorAllowed.toFixed(0)}); trend over the second half ${rssSlope.toFixed(1)} MB/min; the database grew ${dbGrowthMB.toFixed(1)} MB (${perMinuteDb.toFixed(1)} MB/min)`);
  console.log(`server CPU per request: ${cpuFirst.toFixed(2)} ms in the first fifth, ${cpuLast.toFixed(2)} ms in the last fifth`);
  console.log(`latency (not judged): median of per-second p99 ${first.toFixed(1)} ms in the first fifth, ${last.toFixed(1)} ms in the last fifth`);
  Object.assign(summary, { requests: sent, errors, lastError: errors ? lastError : null, rssMB: [round1(rssStart), round1(rssEnd)], rssFloorMB: [round1(floorStart), round1(floorEnd)], rssFloorAllowedMB: round1(floorAllowed), rssTrendMBPerMin: round1(rssSlope), dbGrowthMBPerMin: round1(perMinuteDb), cpuMsPerRequest: [round2(cpuFirst), round2(cpuLast)], p99Ms: [round1(first), round1(last)] });
  if (errors > 0) reasons.push(`${errors} of ${sent} requests failed (last: ${lastError})`);
  // sql.js holds the database in memory, so memory may grow as fast as the database does; more is a leak.
  if (floorEnd - floorStart > floorAllowed) reasons.push(`memory grew: the lowest RSS rose from ${floorStart.toFixed(0)} to ${floorEnd.toFixed(0)} MB, more than twice the database's growth plus 32 MB (${floorAllowed.toFixed(0)} MB)`);
  if (cpuLast > cpuFirst * 1.5) reasons.push(`work per request drifted: the server spent ${cpuLast.toFixed(2)} ms of CPU per request in the last fifth, ${cpuFirst.toFixed(2)} ms in the first`);
  if (warm.length < 5) reasons.push(`too short to judge: ${series.length} one-second samples`);
  srv.child.kill('SIGTERM');
  const code = await srv.exited;
  if (code !== 0) reasons.push(`the server exited ${code} on SIGTERM`);
} catch (e) {
  console.log(`soak failed: ${(e as Error).stack}`);
  reasons.push(`crashed: ${(e as Error).message.split('\n')[0]}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
finish('soak', reasons, { seed: SEED, seconds: SECONDS, rate: RATE, ...summary });

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
