/**
 * Store benchmark (issue 3): durable insert rates at 0 and 100k rows, one at a time and 8 at
 * once; open time and resident memory of a 100k-certificate database; opening and migrating the
 * Go fixture. Prints figures; not a test.
 *
 *   node dist/scripts/bench-store.js [--rows 100000] [--seconds 3]
 *
 * Prints the figures, then one JSON line with all of them (serials are not part of them).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore, type SqlJsStore } from '../src/store/sqljs-store.js';
import type { IssuedCertificate } from '../src/store/types.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROWS = opt('--rows', 100_000);
const SECONDS = opt('--seconds', 3);

const der = Buffer.alloc(456, 0x5a); // the size of a P-256 device certificate
const keyId = Buffer.alloc(20, 7);
let serial = 1795722176495076734n;
function cert(): IssuedCertificate {
  serial += 1n;
  const id = crypto.randomUUID();
  return { deviceId: id, name: 'Signing', serial, keyId, der, notBefore: new Date(), notAfter: new Date(Date.now() + 365 * 86400e3), issuedBy: 'bootstrap' };
}

async function rate(store: SqlJsStore, concurrency: number): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  const worker = async () => {
    while (performance.now() < end) {
      await store.recordIssued(cert());
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return n / ((performance.now() - t0) / 1000);
}

async function fill(store: SqlJsStore, target: number): Promise<void> {
  let have = (await store.stats()).certificates;
  while (have < target) {
    const batch = Math.min(512, target - have);
    await Promise.all(Array.from({ length: batch }, () => store.recordIssued(cert())));
    have += batch;
  }
}

if (args[0] === '--open-only') {
  // Run in a fresh process so the figure is the open alone.
  const t = performance.now();
  const s = await openStore({ path: args[1]!, readOnly: args[2] !== 'writer' });
  const ms = performance.now() - t;
  const n = (await s.stats()).certificates;
  console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss, certificates: n }));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'liteboot-bench-store-'));
const figures: Record<string, unknown> = { rows: ROWS, seconds: SECONDS };
try {
  const path = join(dir, 'CADB.db');
  const store = await openStore({ path });
  const empty1 = await rate(store, 1);
  const empty8 = await rate(store, 8);
  console.log(`empty store:     1 at a time ${empty1.toFixed(0)}/s, 8 at once ${empty8.toFixed(0)}/s`);
  const t0 = performance.now();
  await fill(store, ROWS);
  console.log(`filled to ${ROWS} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const full1 = await rate(store, 1);
  const full8 = await rate(store, 8);
  console.log(`${ROWS} rows:     1 at a time ${full1.toFixed(0)}/s (${((full1 / empty1) * 100).toFixed(0)}% of empty), 8 at once ${full8.toFixed(0)}/s (${((full8 / empty8) * 100).toFixed(0)}% of empty)`);
  await store.close();
  console.log(`CADB.db size: ${(statSync(path).size / 1e6).toFixed(1)} MB`);
  Object.assign(figures, { insertsPerSecond: { empty: { one: Math.round(empty1), eight: Math.round(empty8) }, full: { one: Math.round(full1), eight: Math.round(full8) } }, dbBytes: statSync(path).size });

  for (const mode of ['read-only', 'writer'] as const) {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--open-only', path, mode], { encoding: 'utf8' });
    const r = JSON.parse(child.stdout) as { ms: number; rss: number; certificates: number };
    console.log(`open ${r.certificates} certificates (${mode}, fresh process): ${r.ms.toFixed(0)} ms; resident memory with it open ${(r.rss / 1e6).toFixed(0)} MB`);
    figures[`open-${mode}`] = { ms: Math.round(r.ms), rssBytes: r.rss, certificates: r.certificates };
  }

  const fixture = resolve(fileURLToPath(new URL('../../test/fixtures/go-liteboot-small/CADB.db', import.meta.url)));
  const goPath = join(dir, 'go', 'CADB.db');
  cpSync(fixture, goPath);
  const t2 = performance.now();
  const go = await openStore({ path: goPath });
  const goMs = performance.now() - t2;
  const goCount = (await go.stats()).certificates;
  console.log(`open + migrate the Go fixture (${goCount} certificates): ${goMs.toFixed(1)} ms`);
  figures.goFixture = { ms: Math.round(goMs * 10) / 10, certificates: goCount };
  await go.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ bench: 'store', ...figures }));
