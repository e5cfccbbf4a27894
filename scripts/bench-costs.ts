/**
 * The cost of the operations one certificate pays for beside TLS and its two signatures (issue
 * 15), each alone, so that a change to one of them is measured by itself:
 *
 * - `fdatasync` of a 700-byte append that grows the file, against one written into zeros the
 *   journal wrote ahead (what JournalWriter does): wall and CPU time;
 * - the first store lookup after a pause, sql.js in its default locking mode against the
 *   exclusive mode the store uses (the page cache kept across transactions);
 * - a journal frame (JSON, CRC-32), CRC-32 alone (native and table), an audit line's SHA-256.
 *
 *   node dist/scripts/bench-costs.js [--rounds 2000]
 *
 * Prints one line per figure, then one JSON line with all of them (microseconds). Not a test.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import initSqlJs from 'sql.js';
import { crc32, crc32Table } from '../src/store/crc32.js';
import { frame } from '../src/store/journal.js';

const args = process.argv.slice(2);
const ROUNDS = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : 2000;
const dir = mkdtempSync(join(tmpdir(), 'liteboot-bench-costs-'));
const out: Record<string, number> = {};
const us = (x: number) => Math.round(x * 10) / 10;
const say = (key: string, what: string, value: number) => {
  out[key] = us(value);
  console.log(`${what}: ${us(value)} µs`);
};

function fsyncCost(zerosAhead: boolean): { wall: number; cpu: number } {
  const path = join(dir, `segment-${zerosAhead ? 'zeros' : 'grow'}`);
  const fd = openSync(path, 'w+');
  const rec = Buffer.alloc(700, 0x61);
  if (zerosAhead) {
    const z = Buffer.alloc(1 << 20);
    for (let i = 0; i * z.length < ROUNDS * rec.length; i++) writeSync(fd, z, 0, z.length, i * z.length);
    fdatasyncSync(fd);
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < ROUNDS; i++) {
    writeSync(fd, rec, 0, rec.length, i * rec.length);
    fdatasyncSync(fd);
  }
  const wall = ((performance.now() - t0) * 1000) / ROUNDS;
  const c = process.cpuUsage(c0);
  closeSync(fd);
  return { wall, cpu: (c.user + c.system) / ROUNDS };
}

async function firstLookupAfterPause(exclusive: boolean): Promise<number> {
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  db.run(`PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;${exclusive ? ' PRAGMA locking_mode = EXCLUSIVE;' : ''}`);
  db.run('CREATE TABLE certs (id TEXT NOT NULL, serial INTEGER NOT NULL, cert BLOB NOT NULL); CREATE INDEX certs_serial ON certs(serial)');
  const ins = db.prepare('INSERT INTO certs VALUES (?, ?, ?)');
  db.run('BEGIN');
  for (let i = 0; i < 20_000; i++) ins.run([randomUUID(), i, new Uint8Array(450)]);
  db.run('COMMIT');
  const sel = db.prepare('SELECT id FROM certs WHERE serial = ?');
  const N = Math.min(ROUNDS, 300);
  let total = 0;
  for (let i = 0; i < N; i++) {
    db.run('BEGIN');
    ins.run([randomUUID(), 100_000 + i, new Uint8Array(450)]);
    db.run('COMMIT');
    await new Promise((r) => setTimeout(r, 2)); // a pause, as between two connections
    const t0 = performance.now();
    sel.bind([(i * 7919) % 20_000]);
    sel.step();
    sel.reset();
    total += performance.now() - t0;
  }
  db.close();
  return (total * 1000) / N;
}

function perCall(f: () => unknown): number {
  const n = ROUNDS * 50;
  for (let i = 0; i < 1000; i++) f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return ((performance.now() - t0) * 1000) / n;
}

try {
  const grow = fsyncCost(false);
  const zeros = fsyncCost(true);
  say('fdatasyncGrowWall', 'fdatasync of a 700-byte append that grows the file, wall', grow.wall);
  say('fdatasyncGrowCpu', '  and CPU', grow.cpu);
  say('fdatasyncZerosWall', 'fdatasync of a 700-byte write into zeros written ahead, wall', zeros.wall);
  say('fdatasyncZerosCpu', '  and CPU', zeros.cpu);
  say('lookupAfterPauseNormal', 'sql.js: first lookup after a commit and a pause, default locking', await firstLookupAfterPause(false));
  say('lookupAfterPauseExclusive', 'sql.js: the same in exclusive locking mode (the store)', await firstLookupAfterPause(true));
  const record = { seq: 1, op: 'cert', id: randomUUID(), name: 'Signing', serial: '1795722176495076734', keyid: Buffer.alloc(20, 7).toString('base64'), cert: Buffer.alloc(456, 0x5a).toString('base64'), nb: '2026-12-02 06:00:00.000+00:00', na: '2027-12-02 06:00:00.000+00:00', by: 'bootstrap:1', at: Date.now(), reg: 'pending' };
  const payload = Buffer.from(JSON.stringify(record));
  say('journalFrame', 'a journal frame of a certificate record (JSON, CRC-32)', perCall(() => frame(record)));
  say('crc32', 'CRC-32 of that record, as the journal computes it', perCall(() => crc32(payload)));
  say('crc32Table', 'CRC-32 of that record, table-driven (Node before 20.15)', perCall(() => crc32Table(payload)));
  const line = JSON.stringify({ seq: 1, time: new Date().toISOString(), event: 'issue', serial: record.serial, device: record.id, by: 'bootstrap:1', via: 'cr', keyId: 'ab'.repeat(20), prev: '0'.repeat(64) });
  say('auditHashObject', "an audit line's SHA-256 with a Hash object", perCall(() => createHash('sha256').update(line).digest('hex')));
  const oneShot = (await import('node:crypto') as { hash?: (a: string, d: string, e: 'hex') => string }).hash;
  if (oneShot) say('auditHashOneShot', 'the same with crypto.hash (what the audit log uses)', perCall(() => oneShot('sha256', line, 'hex')));
  console.log(JSON.stringify({ bench: 'costs', rounds: ROUNDS, microseconds: out }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
