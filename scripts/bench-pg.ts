/**
 * PostgreSQL benchmark (issue 14): POST /api/v1/cr in CBOR with the bootstrap certificate, every
 * answer's framing checked, keep-alive connections, as bench-server does; for 8 and 32 clients:
 *
 *   - one server on CADB.db (sql.js), the default;
 *   - one server on PostgreSQL;
 *   - two servers on the same PostgreSQL, the clients split between them (what a TCP balancer
 *     in front of them does with keep-alive connections).
 *
 * PostgreSQL: a throwaway cluster (initdb in a temp directory, fsync on: durability is the point),
 * a fresh database per case; or `--url postgres://...` to use one you have (its data is kept).
 *
 *   node dist/scripts/bench-pg.js [--seconds 10] [--clients 8,32] [--cases cadb,pg1,pg2] [--url URL]
 *
 * Prints the figures, then one JSON line per case. Not a test: it judges nothing.
 */
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertsDir } from '../src/ca/certs-dir.js';
import { setupBootstrap, setupCa } from '../src/ca/setup.js';
import { startPostgres, type PgCluster } from '../test/helpers/pg.js';
import { csrPool, startServer, stopServer } from './lib/bench-server-process.js';
import { cpuSeconds, isCrCertificate, load, summarize, type LoadResult } from './lib/load.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : dflt;
};
const SECONDS = Number(arg('--seconds', '10'));
const CLIENTS = arg('--clients', '8,32').split(',').map(Number);
const CASES = arg('--cases', 'cadb,pg1,pg2').split(',');
const URL_GIVEN = args.includes('--url') ? arg('--url', '') : undefined;

const base = mkdtempSync(join(tmpdir(), 'liteboot-bench-pg-'));
let cluster: PgCluster | undefined;
const lines: string[] = [];
try {
  const certs = new CertsDir(join(base, 'ca', 'certs'));
  await setupCa({ certs, dbPath: join(base, 'ca', 'CADB.db'), hostname: 'localhost', now: new Date() });
  await setupBootstrap({ certs, now: new Date() });
  const tls = { ca: readFileSync(certs.path('CA.crt')), cert: readFileSync(certs.path('BOOTSTRAP.crt')), key: readFileSync(certs.path('BOOTSTRAP.key')) };
  console.log('making a pool of CSRs ...');
  const pool = await csrPool(20_000);
  if (!URL_GIVEN && CASES.some((c) => c.startsWith('pg'))) {
    cluster = await startPostgres();
    console.log(`throwaway PostgreSQL on 127.0.0.1:${cluster.port} (fsync on)`);
  }
  let n = 0;
  for (const name of CASES) {
    for (const clients of CLIENTS) {
      const servers = name === 'pg2' ? 2 : 1;
      const db = name === 'cadb' ? 'CADB.db' : URL_GIVEN ?? (await cluster!.createDatabase());
      // Each server its own directory (its own audit.jsonl), the same CA.
      const dirs = Array.from({ length: servers }, () => {
        const d = join(base, `run-${n++}`);
        cpSync(join(base, 'ca', 'certs'), join(d, 'certs'), { recursive: true });
        return d;
      });
      const running: { child: ChildProcess; port: number }[] = [];
      for (const d of dirs) running.push(await startServer(d, { args: ['--db', db] })); // one after another: the first migrates
      // Other work on the machine moves these figures: the 1-minute load average goes with them.
      const load1 = loadavg()[0]!;
      const s0 = running.map((r) => cpuSeconds(r.child.pid!));
      const share = (i: number) => Math.floor(clients / servers) + (i < clients % servers ? 1 : 0);
      const results: LoadResult[] = await Promise.all(
        running.map((r, i) =>
          load({
            port: r.port,
            tls,
            seconds: SECONDS,
            clients: share(i),
            keepAlive: true,
            request: (k) => ({ path: '/api/v1/cr', headers: { 'Content-Type': 'application/cbor' }, body: pool[(k * servers + i) % pool.length]! }),
            check: (status, _h, data) => isCrCertificate(status, data),
          }),
        ),
      );
      const cores = running.reduce((sum, r, i) => sum + (cpuSeconds(r.child.pid!) - s0[i]!), 0);
      for (const r of running) await stopServer(r.child);
      const merged: LoadResult = {
        ok: results.reduce((s, r) => s + r.ok, 0),
        errors: results.reduce((s, r) => s + r.errors, 0),
        seconds: Math.max(...results.map((r) => r.seconds)),
        latencies: results.flatMap((r) => r.latencies),
      };
      const { rate, p50, p99 } = summarize(merged);
      const label = { cadb: 'one server on CADB.db', pg1: 'one server on PostgreSQL', pg2: 'two servers on PostgreSQL' }[name] ?? name;
      console.log(`${label}, ${clients} clients: ${rate.toFixed(0)} certificates/s, ${merged.ok} ok, ${merged.errors} errors, p50 ${p50 ?? '-'} ms, p99 ${p99 ?? '-'} ms, server cores ${(cores / merged.seconds).toFixed(2)}`);
      lines.push(
        JSON.stringify({
          bench: 'pg',
          case: name,
          store: name === 'cadb' ? 'sqljs' : 'postgresql',
          servers,
          clients,
          seconds: Number(merged.seconds.toFixed(1)),
          perSecond: Math.round(rate),
          ok: merged.ok,
          errors: merged.errors,
          p50Ms: p50,
          p99Ms: p99,
          serverCores: Math.round((cores / merged.seconds) * 100) / 100,
          loadAverage: Math.round(load1 * 100) / 100,
        }),
      );
    }
  }
} finally {
  await cluster?.stop();
  rmSync(base, { recursive: true, force: true });
}
for (const l of lines) console.log(l);
