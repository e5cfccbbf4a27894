/**
 * Crash test (issue 7): a real server under keep-alive load from 8 clients, killed with SIGKILL
 * at a random moment (also while it shuts down, and with a journal small enough that it is
 * compacting all the time), restarted on the same files, again and again. After every restart
 * each certificate any client received must answer Status 1 through `cs`.
 *
 *   node dist/scripts/crash-test.js [--cycles 20] [--seed N]
 *
 * The seed chooses the device keys and UUIDs and when each kill lands; --seed N replays those
 * (which request is in flight at the kill still depends on the machine). Prints one JSON line
 * at the end and exits non-zero on a failure.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, client, csrPool, finish, makeCa, prng, sleep, startServer } from './lib/harness.js';

const CYCLES = arg('--cycles', 20);
const SEED = arg('--seed', 1);
const random = prng(SEED);
console.log(`crash test: ${CYCLES} cycles, seed ${SEED} (replay with --seed ${SEED})`);

const dir = mkdtempSync(join(tmpdir(), 'liteboot-crash-'));
const reasons: string[] = [];
const received = new Set<bigint>();
const cycles: { cycle: number; mode: string; killAfterMs: number; received: number; missing: number }[] = [];
const missingSerials: bigint[] = [];
let found = 0;
let exitCode: number | null = null;
try {
  await makeCa(dir);
  // A journal this small is folded into CADB.db every few hundred certificates: kills land in compactions too.
  writeFileSync(join(dir, '.liteboot.toml'), '[server]\njournal_compact_bytes = 65536\n');
  const pool = await csrPool(2000, random);
  let next = 0;
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const mode = cycle % 3 === 0 ? 'during shutdown' : 'under load';
    const srv = await startServer(dir);
    // Everything received so far must be there after the previous kill.
    const checker = client(dir, srv.port, 'BOOTSTRAP', 4);
    const all = [...received];
    const lost = await notGood(checker, all);
    const missing = lost.length;
    checker.close();
    if (missing > 0) {
      console.log(`cycle ${cycle}: ${missing} of ${all.length} received certificates are not answered Status 1`);
      reasons.push(`after kill ${cycle - 1}, ${missing} of ${all.length} received certificates were not answered Status 1`);
      missingSerials.push(...lost.slice(0, 20));
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
    const killAfterMs = Math.round(150 + random() * 1200);
    const afterTerm = random() * 30;
    await sleep(killAfterMs);
    if (mode === 'during shutdown') {
      srv.child.kill('SIGTERM');
      await sleep(afterTerm);
    }
    srv.child.kill('SIGKILL');
    await srv.exited;
    stop = true;
    await Promise.all(clients);
    console.log(`cycle ${cycle}: killed ${mode} ${killAfterMs} ms into the load, after ${got} certificates (${received.size} received in all${missing ? `, ${missing} MISSING` : ''})`);
    cycles.push({ cycle, mode, killAfterMs, received: got, missing });
  }
  // A last restart checks the last cycle's certificates, then stops cleanly.
  const srv = await startServer(dir);
  const checker = client(dir, srv.port, 'BOOTSTRAP', 4);
  const all = [...received];
  const lost = await notGood(checker, all);
  found = all.length - lost.length;
  checker.close();
  srv.child.kill('SIGTERM');
  exitCode = await srv.exited;
  console.log(`result: ${CYCLES} cycles, ${received.size} certificates received, ${found} answered Status 1 after the last restart; clean shutdown exit ${exitCode}`);
  if (lost.length) {
    reasons.push(`after the last restart, ${lost.length} of ${all.length} received certificates were not answered Status 1`);
    missingSerials.push(...lost.slice(0, 20));
  }
  if (received.size === 0) reasons.push('no client received a certificate: the load never ran');
  if (exitCode !== 0) reasons.push(`the server exited ${exitCode} on SIGTERM after the last restart`);
} catch (e) {
  console.log(`crash test failed: ${(e as Error).stack}`);
  reasons.push(`crashed: ${(e as Error).message.split('\n')[0]}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
finish('crash-test', reasons, { seed: SEED, cycles: CYCLES, received: received.size, answeredStatus1: found, shutdownExit: exitCode, missingSerials, perCycle: cycles });

/** The serials among `serials` that `cs` does not answer Status 1 (64 queries at a time). */
async function notGood(checker: ReturnType<typeof client>, serials: bigint[]): Promise<bigint[]> {
  const bad: bigint[] = [];
  for (let i = 0; i < serials.length; i += 64) {
    const chunk = serials.slice(i, i + 64);
    const st = await Promise.all(chunk.map((s) => checker.certStatus(s).then((r) => (r.kind === 'cs' ? r.status : -1), () => -1)));
    st.forEach((v, k) => v !== 1 && bad.push(chunk[k]!));
  }
  return bad;
}

function serialOf(der: Buffer): bigint {
  return BigInt('0x' + new X509Certificate(der).serialNumber);
}
