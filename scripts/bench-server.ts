/**
 * Server benchmark (issue 4): POST /api/v1/cr with CBOR bodies from 8 concurrent clients using
 * the bootstrap certificate, every response checked; keep-alive connections, then a new TLS
 * connection per request (as a device does); on an empty store, then with 100k certificates
 * already recorded. The server runs as a separate process (`liteboot server start`).
 *
 *   node dist/scripts/bench-server.js [--seconds 10] [--clients 8] [--prefill 100000] [--metrics on|off]
 *
 * `--metrics off` runs the server with `metrics_listen = ""` (nothing recorded); `on` (default)
 * binds the metrics listener on a free loopback port (recorded, not scraped).
 *
 * Prints the figures, then one JSON line with all of them. Not a test: it judges nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertsDir } from '../src/ca/certs-dir.js';
import { setupBootstrap, setupCa } from '../src/ca/setup.js';
import { openStore } from '../src/store/sqljs-store.js';
import { csrPool, startServer, stopServer } from './lib/bench-server-process.js';
import { cpuSeconds, isCrCertificate, load, machineTicks, summarize, threadCpuSeconds, type LoadResult } from './lib/load.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SECONDS = opt('--seconds', 10);
const CLIENTS = opt('--clients', 8);
const PREFILL = opt('--prefill', 100_000);
const MODES = (args.includes('--modes') ? args[args.indexOf('--modes') + 1]! : 'keepalive,newconn').split(',');
const STAGES = (args.includes('--stages') ? args[args.indexOf('--stages') + 1]! : 'empty,prefilled').split(',');
/** `--provider-down`: cloud registration to a webhook that accepts connections and never answers. */
const PROVIDER_DOWN = args.includes('--provider-down');
const METRICS = args.includes('--metrics') ? args[args.indexOf('--metrics') + 1]! : 'on';
if (METRICS !== 'on' && METRICS !== 'off') throw new Error(`--metrics takes on or off, not ${METRICS}`);

/** POST /api/v1/cr in CBOR from CLIENTS clients for SECONDS, every answer's framing checked. */
function loadCr(port: number, tls: { ca: Buffer; cert: Buffer; key: Buffer }, pool: Buffer[], keepAlive: boolean): Promise<LoadResult> {
  return load({
    port,
    tls,
    seconds: SECONDS,
    clients: CLIENTS,
    keepAlive,
    request: (n) => ({ path: '/api/v1/cr', headers: { 'Content-Type': 'application/cbor' }, body: pool[n % pool.length]! }),
    check: (status, _headers, data) => isCrCertificate(status, data),
  });
}

const figures: Record<string, unknown> = { seconds: SECONDS, clients: CLIENTS, prefill: PREFILL };

function report(label: string, key: string, r: LoadResult): number {
  const { rate, p50, p99 } = summarize(r);
  console.log(`${label}: ${rate.toFixed(0)} certificates/s, ${r.ok} ok, ${r.errors} errors, latency p50 ${p50 ?? '-'} ms, p99 ${p99 ?? '-'} ms`);
  figures[key] = { perSecond: Math.round(rate), ok: r.ok, errors: r.errors, p50Ms: p50 ?? null, p99Ms: p99 ?? null };
  return rate;
}

const dir = mkdtempSync(join(tmpdir(), 'liteboot-bench-server-'));
try {
  const certs = new CertsDir(join(dir, 'certs'));
  await setupCa({ certs, dbPath: join(dir, 'CADB.db'), hostname: 'localhost', now: new Date() });
  await setupBootstrap({ certs, now: new Date() });
  if (PROVIDER_DOWN) {
    const silent = createNetServer((sock) => sock.on('error', () => {})); // holds every connection, answers nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    silent.unref();
    const port = (silent.address() as { port: number }).port;
    writeFileSync(join(dir, '.liteboot.toml'), `[cloud]\nprovider = "webhook"\nurl = "http://127.0.0.1:${port}/hook"\nsecret = "x"\ntimeout = 10\nconcurrency = 4\n`);
    console.log(`cloud provider: a webhook that never answers (timeout 10 s)`);
  }
  const tls = { ca: readFileSync(certs.path('CA.crt')), cert: readFileSync(certs.path('BOOTSTRAP.crt')), key: readFileSync(certs.path('BOOTSTRAP.key')) };
  console.log(`making a pool of CSRs ...`);
  const pool = await csrPool(20_000);
  const rates: Record<string, number> = {};
  for (const stage of (['empty', 'prefilled'] as const).filter((s) => STAGES.includes(s))) {
    if (stage === 'prefilled') {
      const store = await openStore({ path: join(dir, 'CADB.db') });
      const have = (await store.stats()).certificates;
      const der = Buffer.alloc(470, 0x5a);
      let serial = (await store.maxSerial()) + 1n;
      for (let n = have; n < PREFILL; n += 512) {
        await Promise.all(
          Array.from({ length: Math.min(512, PREFILL - n) }, () =>
            store.recordIssued({ deviceId: randomUUID(), name: 'Signing', serial: serial++, keyId: Buffer.alloc(20), der, notBefore: new Date(), notAfter: new Date(Date.now() + 3e10) }),
          ),
        );
      }
      console.log(`store prefilled to ${(await store.stats()).certificates} certificates`);
      await store.close();
    }
    const { child, port } = await startServer(dir, {
      metricsListen: METRICS === 'on' ? '127.0.0.1:0' : '',
      nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [],
      env: { ...process.env, ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}) },
    });
    for (const keepAlive of [true, false].filter((k) => MODES.includes(k ? 'keepalive' : 'newconn'))) {
      const s0 = cpuSeconds(child.pid!);
      const t0 = threadCpuSeconds(child.pid!);
      const m0 = machineTicks();
      const c0 = process.cpuUsage();
      const r = await loadCr(port, tls, pool, keepAlive);
      const server = (cpuSeconds(child.pid!) - s0) / r.seconds;
      const t1 = threadCpuSeconds(child.pid!);
      const m1 = machineTicks();
      const c = process.cpuUsage(c0);
      const client = (c.user + c.system) / 1e6 / r.seconds;
      const label = `${stage} store, ${keepAlive ? 'keep-alive' : 'new TLS connection per request'}, ${CLIENTS} clients`;
      const key = `${stage}-${keepAlive ? 'keepalive' : 'newconn'}`;
      rates[key] = report(label, key, r);
      // Where a certificate's CPU goes, and whether the machine had any to spare: the event loop is
      // the server's bottleneck only if it is busy nearly all the time (see README "Speed").
      const perCert = (s: number) => (r.ok > 0 ? Math.round((s / r.ok) * 1e5) / 100 : null);
      const share = (n: number) => (m1.total > m0.total ? Math.round((1000 * n) / (m1.total - m0.total)) / 10 : null);
      const split = {
        loopMsPerCert: perCert(t1.loop - t0.loop),
        otherThreadsMsPerCert: perCert(t1.others - t0.others),
        loopBusyPct: Math.round(((t1.loop - t0.loop) / r.seconds) * 1000) / 10,
        machineIdlePct: share(m1.idle - m0.idle),
        machineStolenPct: share(m1.steal - m0.steal),
      };
      Object.assign(figures[key] as object, { serverCores: Math.round(server * 100) / 100, loadGeneratorCores: Math.round(client * 100) / 100, ...split });
      console.log(`  cores busy: server ${server.toFixed(2)}, load generator ${client.toFixed(2)}`);
      console.log(
        `  CPU per certificate: event loop ${split.loopMsPerCert} ms (busy ${split.loopBusyPct}% of the time), other threads ${split.otherThreadsMsPerCert} ms; ` +
          `machine idle ${split.machineIdlePct}%, stolen by the host ${split.machineStolenPct}%`,
      );
    }
    await stopServer(child);
  }
  if (rates['prefilled-keepalive'] && rates['empty-keepalive'] && rates['prefilled-newconn'] && rates['empty-newconn']) console.log(
    `prefilled/empty: keep-alive ${((rates['prefilled-keepalive']! / rates['empty-keepalive']!) * 100).toFixed(0)}%, new connection ${((rates['prefilled-newconn']! / rates['empty-newconn']!) * 100).toFixed(0)}%`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ bench: 'server', metrics: METRICS, ...figures }));
