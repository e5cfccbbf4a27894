/**
 * Crash test (issue 7): a real server under keep-alive load from 8 clients, killed with SIGKILL
 * at a random moment (also while it shuts down, and with a journal small enough that it is
 * compacting all the time), restarted on the same files, again and again. After every restart
 * each certificate any client received must answer Status 1 through `cs`.
 *
 *   node dist/scripts/crash-test.js [--cycles 20] [--seed N]
 * Exits non-zero on a failure.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, client, csrPool, makeCa, prng, sleep, startServer } from './lib/harness.js';

const CYCLES = arg('--cycles', 20);
const SEED = arg('--seed', 1);
const random = prng(SEED);
console.log(`crash test: ${CYCLES} cycles, seed ${SEED} (replay with --seed ${SEED})`);

const dir = mkdtempSync(join(tmpdir(), 'liteboot-crash-'));
let failed = false;
try {
  await makeCa(dir);
  // A journal this small is folded into CADB.db every few hundred certificates: kills land in compactions too.
  writeFileSync(join(dir, '.liteboot.toml'), '[server]\njournal_compact_bytes = 65536\n');
  const pool = await csrPool(2000);
  const received = new Set<bigint>();
  let next = 0;
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const mode = cycle % 3 === 0 ? 'during shutdown' : 'under load';
    const srv = await startServer(dir);
    // Everything received so far must be there after the previous kill.
    const checker = client(dir, srv.port, 'BOOTSTRAP', 4);
    const all = [...received];
    let missing = 0;
    for (let i = 0; i < all.length; i += 64) {
      const statuses = await Promise.all(all.slice(i, i + 64).map((s) => checker.certStatus(s).then((r) => (r.kind === 'cs' ? r.status : -1), () => -1)));
      missing += statuses.filter((s) => s !== 1).length;
    }
    checker.close();
    if (missing > 0) {
      console.log(`cycle ${cycle}: ${missing} of ${all.length} received certificates are not answered Status 1`);
      failed = true;
    }
    let stop = false;
    let got = 0;
    const load = async () => {
      const c = client(dir, srv.port, 'BOOTSTRAP', 1);
      while (!stop) {
        try {
          const der = await c.enrol(pool[next++ % pool.length]!, 'cbor');
          received.add(serialOf(der));
          got++;
        } catch {
          if (stop) break;
          await sleep(5);
        }
      }
      c.close();
    };
    const clients = Array.from({ length: 8 }, load);
    await sleep(150 + random() * 1200);
    if (mode === 'during shutdown') {
      srv.child.kill('SIGTERM');
      await sleep(random() * 30);
    }
    srv.child.kill('SIGKILL');
    await srv.exited;
    stop = true;
    await Promise.all(clients);
    console.log(`cycle ${cycle}: killed ${mode} after ${got} certificates (${received.size} received in all${missing ? `, ${missing} MISSING` : ''})`);
  }
  // A last restart checks the last cycle's certificates, then stops cleanly.
  const srv = await startServer(dir);
  const checker = client(dir, srv.port, 'BOOTSTRAP', 4);
  let found = 0;
  const all = [...received];
  for (let i = 0; i < all.length; i += 64) {
    const st = await Promise.all(all.slice(i, i + 64).map((s) => checker.certStatus(s).then((r) => (r.kind === 'cs' ? r.status : -1), () => -1)));
    found += st.filter((s) => s === 1).length;
  }
  checker.close();
  srv.child.kill('SIGTERM');
  const code = await srv.exited;
  console.log(`result: ${CYCLES} cycles, ${received.size} certificates received, ${found} answered Status 1 after the last restart; clean shutdown exit ${code}`);
  if (found !== received.size || code !== 0) failed = true;
} catch (e) {
  console.log(`crash test failed: ${(e as Error).message}`);
  failed = true;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(failed ? 'FAILED' : 'passed');
process.exit(failed ? 1 : 0);

function serialOf(der: Buffer): bigint {
  return BigInt('0x' + new X509Certificate(der).serialNumber);
}
