import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MAGIC, MAX_FRAME, listSegments, readSegment } from '../../src/store/journal.js';
import { openStore, type SqlJsStore } from '../../src/store/sqljs-store.js';
import { cert as contractCert, storeContract } from './contract.js';
import type { IssuedCertificate } from '../../src/store/types.js';
import { FIXTURE, ROOT, run, tempDir } from '../helpers/run.js';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const fresh = (name: string) => {
  const d = join(tmp.dir, `${name}-${n++}`);
  mkdirSync(d);
  return join(d, 'CADB.db');
};
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const sqlite = (db: string, sql: string) => {
  const r = run('sqlite3', [db, sql], { encoding: 'utf8' });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
};

// The contract's certificate, issued now (the store's clock) rather than at a fixed date.
const cert = (serial: bigint, id?: string): IssuedCertificate => contractCert(serial, id, { issuedAt: undefined });

describe('migration of the Go database', () => {
  const GO_ROWS = [
    ['492ca910-8297-4e5e-bc99-a45bf0b3117f', 1795722176495076734n, 1],
    ['3e100bab-74d5-472d-a213-dae9e38160e6', 1795722176688618130n, 1],
    ['d1685f60-7c96-46ed-b319-7e8e26d7313a', 1795722176878240957n, 1],
    ['23d80612-09d7-4181-9b14-24c1173f7028', 1795722177070195647n, 0],
  ] as const;

  test('keeps every serial, id and certificate byte; backs up the original; sqlite3 reads the result', async () => {
    const path = fresh('go');
    copyFileSync(join(FIXTURE, 'CADB.db'), path);
    const before = sqlite(path, 'SELECT id, serial, hex(keyid), hex(cert), expiry, valid FROM certs ORDER BY rowid');
    const logs: string[] = [];
    const store = await openStore({ path, log: (m) => logs.push(m) });
    assert.ok(logs.some((l) => l.includes('migrated')));
    for (const [id, serial, valid] of GO_ROWS) {
      const r = await store.findBySerial(serial);
      assert.ok(r, `serial ${serial}`);
      assert.equal(r.serial, serial);
      assert.equal(r.deviceId, id);
      assert.equal(r.valid, valid === 1);
      const rsp = readFileSync(join(FIXTURE, 'devices', `${id}.rsp`));
      assert.deepEqual(Buffer.from(r.der), rsp.subarray(7), 'the DER the Go server sent');
    }
    assert.deepEqual(await store.validSerials('492CA910-8297-4E5E-BC99-A45BF0B3117F'), [1795722176495076734n]);
    assert.deepEqual(await store.validSerials('23d80612-09d7-4181-9b14-24c1173f7028'), []);
    await store.close();
    assert.equal(sha(`${path}.bak-20220215a`), sha(join(FIXTURE, 'CADB.db')));
    assert.equal(sqlite(path, 'SELECT id, serial, hex(keyid), hex(cert), expiry, valid FROM certs ORDER BY rowid'), before);
    assert.equal(sqlite(path, "SELECT value FROM settings WHERE key = 'schemaVersion'"), 'liteboot-2');
    // The row the original marked invalid got one revocation date, the migration's, for every CRL.
    const dated = Number(sqlite(path, 'SELECT revoked_at FROM certs WHERE valid = 0'));
    assert.ok(dated > Date.now() - 600_000 && dated <= Date.now(), `revoked_at ${dated}`);
    assert.equal(sqlite(path, 'PRAGMA integrity_check'), 'ok');
    // the migration runs once
    const again = await openStore({ path, log: (m) => logs.push(`2:${m}`) });
    assert.ok(!logs.some((l) => l.startsWith('2:migrated')));
    assert.equal((await again.stats()).certificates, 4);
    await again.close();
  });

  test('keeps what the original let through: mixed-case ids, non-UUID CNs, bootstrap-OU rows, one id with many certificates', async () => {
    const path = fresh('odd');
    copyFileSync(join(FIXTURE, 'CADB.db'), path);
    const inserts = [
      "INSERT INTO devices VALUES ('ABCDEF00-0000-4000-8000-000000000001', 0)",
      "INSERT INTO devices VALUES ('abcdef00-0000-4000-8000-000000000001', 0)",
      "INSERT INTO devices VALUES ('localhost', 0)",
      "INSERT INTO certs VALUES ('ABCDEF00-0000-4000-8000-000000000001', 'Signing', 1795722177070195700, x'01', x'02', '2027-01-01 00:00:00+00:00', 1)",
      "INSERT INTO certs VALUES ('abcdef00-0000-4000-8000-000000000001', 'Signing', 1795722177070195701, x'01', x'03', '2027-01-01 00:00:00+00:00', 1)",
      "INSERT INTO certs VALUES ('localhost', 'LinaroCA Bootstrap Cert', 1795722177070195702, x'01', x'04', '2027-01-01 00:00:00+00:00', 1)",
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO certs SELECT 'busy', 'Signing', 1795722177080000000 + i, x'01', x'05', '2027-01-01 00:00:00+00:00', 1 FROM n",
    ];
    sqlite(path, inserts.join(';'));
    const store = await openStore({ path });
    assert.equal((await store.stats()).certificates, 4 + 3 + 20000);
    assert.deepEqual(await store.validSerials('abcdef00-0000-4000-8000-000000000001'), [1795722177070195700n, 1795722177070195701n]);
    assert.equal((await store.validSerials('busy')).length, 20000);
    assert.equal((await store.findBySerial(1795722177070195702n))?.name, 'LinaroCA Bootstrap Cert');
    await store.close();
  });
});

storeContract('SqlJsStore', async () => {
  const path = fresh('contract');
  const opened: SqlJsStore[] = [];
  let store = await openStore({ path });
  opened.push(store);
  return {
    store,
    twin: async () => store, // one writer per file: the "other instance" is this one
    reopen: async () => {
      store = await reopenAfterCrash(store, path);
      opened.push(store);
      return store;
    },
    watching: async () => {},
    close: async () => {
      for (const s of opened) await s.close();
    },
  };
});

test('serials are stored as SQLite integers, as the original wrote them', async () => {
  const path = fresh('serial');
  const store = await openStore({ path });
  await store.recordIssued(cert(2n ** 63n - 1n, 'one'));
  await store.close();
  assert.equal(sqlite(path, `SELECT serial, typeof(serial) FROM certs WHERE serial = ${2n ** 63n - 1n}`), '9223372036854775807|integer');
});

/**
 * Collects the serials a store-writer child acknowledges and resolves once more than `count` are
 * in (the child's output is the event); rejects if the child exits first or nothing comes in time.
 */
function acknowledged(child: ChildProcess, count: number, ms = 120_000): { acked: bigint[]; enough: Promise<void> } {
  const acked: bigint[] = [];
  let buf = '';
  const enough = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the writer acknowledged only ${acked.length} writes in ${ms / 1000} s`)), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the writer exited (${code ?? signal}) after ${acked.length} writes`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l !== 'ready') acked.push(BigInt(l));
      if (acked.length > count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  enough.catch(() => {}); // observed by the test's await; not an unhandled rejection after a kill
  return { acked, enough };
}

/** Simulates a crash: copies the files as they are on disk to a new place and opens the copy. */
async function reopenAfterCrash(store: Awaited<ReturnType<typeof openStore>>, path: string) {
  const crashed = fresh('crashed');
  for (const f of readdirSync(join(path, '..'))) {
    if (f.startsWith('CADB.db') && !f.endsWith('.lock')) copyFileSync(join(path, '..', f), join(crashed, '..', f));
  }
  await store.close();
  return openStore({ path: crashed });
}

describe('the journal', () => {
  test('a long allowlist goes into several records of a bounded size, and all of it survives a crash; no record is too large to read back', async () => {
    const path = fresh('allow-long');
    const store = await openStore({ path });
    const ids = Array.from({ length: 25_000 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    assert.equal(await store.allowDevices(ids, 'cli', new Date()), ids.length);
    const seg = listSegments(path)[0]!.path;
    const { records } = readSegment(seg);
    assert.deepEqual(records.map((r) => (r.ids as string[]).length), [10_000, 10_000, 5_000]);
    assert.equal(await store.disallowDevices(ids.slice(0, 12_000)), 12_000);
    const s = await reopenAfterCrash(store, path);
    assert.equal((await s.allowedDevices()).length, 13_000);
    assert.ok(await s.isAllowed(ids[24_999]!));
    assert.ok(!(await s.isAllowed(ids[0]!)));
    await s.close();
    // A record that could not be read back is refused before anything changes.
    const w = fresh('too-large');
    const s2 = await openStore({ path: w });
    await assert.rejects(s2.setSetting('big', 'x'.repeat(MAX_FRAME + 1)), /larger than the journal takes/);
    assert.equal(await s2.getSetting('big'), undefined);
    await s2.close();
  });

  test('replay after a kill at every record boundary and in the middle of every record', async () => {
    const path = fresh('journal');
    const store = await openStore({ path });
    const N = 12;
    for (let i = 1; i <= N; i++) await store.recordIssued(cert(BigInt(i)));
    const segs = listSegments(path);
    assert.equal(segs.length, 1);
    const image = join(tmp.dir, 'journal-image');
    mkdirSync(image);
    copyFileSync(path, join(image, 'CADB.db'));
    copyFileSync(segs[0]!.path, join(image, 'segment'));
    await store.close();

    const seg = readFileSync(join(image, 'segment'));
    const { records } = readSegment(join(image, 'segment'));
    assert.equal(records.length, N);
    // Offsets of each frame's end: boundaries; and a point inside each frame.
    const ends: number[] = [];
    let off = MAGIC.length;
    for (let i = 0; i < N; i++) {
      off += 8 + seg.readUInt32BE(off);
      ends.push(off);
    }
    const cuts: [number, number][] = [[0, 0], [3, 0], [MAGIC.length, 0]];
    let prev = MAGIC.length;
    ends.forEach((end, i) => {
      cuts.push([prev + 3, i], [Math.floor((prev + end) / 2), i], [end - 1, i], [end, i + 1]);
      prev = end;
    });
    for (const [cut, expected] of cuts) {
      const p = fresh('cut');
      copyFileSync(join(image, 'CADB.db'), p);
      const segPath = `${p}.lbj.0000000000000001`;
      writeFileSync(segPath, seg.subarray(0, cut));
      const s = await openStore({ path: p });
      assert.equal((await s.stats()).certificates, expected, `cut at ${cut}`);
      for (let i = 1; i <= expected; i++) assert.ok(await s.findBySerial(BigInt(i)), `serial ${i} after cut at ${cut}`);
      // the store goes on working after recovery
      await s.recordIssued(cert(1000n));
      await s.close();
      assert.equal(sqlite(p, 'SELECT count(*) FROM certs'), String(expected + 1));
    }
  });

  test('frames go into zeros written ahead of them; a crash image with that tail replays everything and reports nothing torn', async () => {
    const path = fresh('spare');
    const store = await openStore({ path });
    const seg = listSegments(path)[0]!.path;
    // The first zeros are written in the background at open.
    for (const deadline = Date.now() + 30_000; statSync(seg).size <= MAGIC.length; ) {
      assert.ok(Date.now() < deadline, 'no zeros written ahead of the frames');
      await new Promise((r) => setTimeout(r, 10));
    }
    let serial = 0n;
    const batch = (k: number) => Promise.all(Array.from({ length: k }, () => store.recordIssued(cert(++serial))));
    await batch(5);
    const early = readSegment(seg);
    assert.equal(early.records.length, 5);
    assert.equal(early.tornBytes, 0);
    assert.ok(early.spareBytes > 0 && early.validBytes + early.spareBytes === statSync(seg).size, JSON.stringify({ ...early, records: undefined }));
    // Past the first 1 MiB of zeros (frames here are ~300 bytes): more are written while frames keep coming.
    while (readSegment(seg).validBytes < 2.5 * 1024 * 1024) await batch(400);
    const image = fresh('spare-image');
    copyFileSync(path, image);
    copyFileSync(seg, `${image}.lbj.0000000000000001`);
    const last = readSegment(seg);
    assert.equal(last.records.length, Number(serial));
    assert.equal(last.tornBytes, 0);
    await store.close();
    const logs: string[] = [];
    const s = await openStore({ path: image, log: (m) => logs.push(m) });
    assert.equal((await s.stats()).certificates, Number(serial));
    for (const i of [1n, 2n, serial / 2n, serial]) assert.ok(await s.findBySerial(i), `serial ${i}`);
    assert.ok(!logs.some((l) => l.includes('torn')), logs.join('\n'));
    await s.close();
  });

  test('a corrupt record in the middle ends replay there, and a bad CRC is detected', async () => {
    const path = fresh('crc');
    const store = await openStore({ path });
    for (let i = 1; i <= 5; i++) await store.recordIssued(cert(BigInt(i)));
    // the files as a crash would leave them: CADB.db without the five, the journal with them
    const bytes = readFileSync(listSegments(path)[0]!.path);
    const crashed = fresh('crc-crashed');
    copyFileSync(path, crashed);
    await store.close();
    // Walk the frames (u32 length | u32 CRC | payload) to the 4th, and change its device id in a
    // way that leaves valid JSON of the same length: only the CRC can tell.
    let off = MAGIC.length;
    for (let i = 0; i < 3; i++) off += 8 + bytes.readUInt32BE(off);
    const len = bytes.readUInt32BE(off);
    const payload = bytes.subarray(off + 8, off + 8 + len);
    const at = payload.indexOf('"dev-4"');
    assert.ok(at > 0, payload.toString());
    payload.write('"dev-9"', at);
    assert.equal((JSON.parse(payload.toString()) as { id: string }).id, 'dev-9', 'still a well-formed record');
    writeFileSync(`${crashed}.lbj.0000000000000001`, bytes);
    const logs: string[] = [];
    const s = await openStore({ path: crashed, log: (m) => logs.push(m) });
    assert.equal((await s.stats()).certificates, 3);
    for (const i of [1n, 2n, 3n]) assert.ok(await s.findBySerial(i), `serial ${i}`);
    for (const i of [4n, 5n]) assert.equal(await s.findBySerial(i), undefined, `serial ${i} is after the bad record`);
    assert.deepEqual(await s.validSerials('dev-9'), []);
    assert.ok(logs.some((l) => l.includes('torn journal tail')), logs.join('\n'));
    await s.close();
  });

  test('compaction folds the journal into CADB.db and deletes old segments; nothing is lost across it', async () => {
    const path = fresh('compact');
    const store = await openStore({ path, compactBytes: 2048 });
    for (let i = 1; i <= 200; i++) await store.recordIssued(cert(BigInt(i)));
    await store.compact();
    // CADB.db alone, as the sqlite3 tool reads it without any journal, has every row
    assert.equal(sqlite(path, 'SELECT count(*), min(serial), max(serial) FROM certs'), '200|1|200');
    // and what is left of the journal holds nothing CADB.db lacks: only the newest segment remains
    const left = listSegments(path);
    assert.equal(left.length, 1, left.map((x) => x.path).join(' '));
    assert.equal(readSegment(left[0]!.path).records.length, 0);
    const crashedStore = await reopenAfterCrash(store, path);
    assert.equal((await crashedStore.stats()).certificates, 200);
    await crashedStore.close();
  });

  test('a snapshot torn before its rename is ignored', async () => {
    const path = fresh('tmp');
    const store = await openStore({ path });
    await store.recordIssued(cert(1n));
    await store.close();
    writeFileSync(`${path}.tmp`, 'SQLite format 3\0 torn');
    const s = await openStore({ path });
    assert.equal((await s.stats()).certificates, 1);
    assert.equal(existsSync(`${path}.tmp`), false);
    await s.close();
  });
});

describe('one writer at a time', () => {
  test('a second writer is refused with the holder named; a reader works alongside', async () => {
    const path = fresh('lock');
    const child = spawn(process.execPath, [join(ROOT, 'dist/test/helpers/store-writer.js'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const { acked, enough } = acknowledged(child, 50);
      await enough;
      await assert.rejects(openStore({ path }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'DB_LOCKED');
        assert.match(e.message, new RegExp(`in use by process ${child.pid}`));
        return true;
      });
      const reader = await openStore({ path, readOnly: true });
      const seen = acked.length; // acknowledged before the reader opened: all of them must be visible
      assert.ok((await reader.stats()).certificates >= seen);
      for (const serial of acked.slice(0, seen)) assert.ok(await reader.findBySerial(serial), `serial ${serial}`);
      await assert.rejects(reader.recordIssued(cert(5n)), /read-only/);
      await reader.close();
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // The holder is gone: its lock is stale and taken over, by a writer that can write.
    const s = await openStore({ path });
    await s.recordIssued(cert(5n, 'after'));
    assert.deepEqual(await s.validSerials('after'), [5n]);
    await s.close();
  });

  test('the same process cannot open the database twice for writing', async () => {
    const path = fresh('twice');
    const a = await openStore({ path });
    await assert.rejects(openStore({ path }), /in use by process/);
    await a.close();
  });
});

describe('bad files are refused and left untouched', () => {
  const cases: [string, (p: string) => void, RegExp][] = [
    ['random bytes', (p) => writeFileSync(p, Buffer.alloc(4096, 0x41)), /not a SQLite database/],
    ['an empty file', (p) => writeFileSync(p, ''), /empty/],
    ['a truncated database', (p) => {
      copyFileSync(join(FIXTURE, 'CADB.db'), p);
      truncateSync(p, 5000);
    }, /not a readable SQLite database|cannot be opened|malformed/],
    ['a foreign SQLite database', (p) => {
      run('sqlite3', [p, 'CREATE TABLE t (x); INSERT INTO t VALUES (1);']);
    }, /not a liteboot one/],
    ['a newer schema', (p) => {
      copyFileSync(join(FIXTURE, 'CADB.db'), p);
      run('sqlite3', [p, "UPDATE settings SET value = 'liteboot-99' WHERE key = 'schemaVersion'"]);
    }, /does not know/],
  ];
  for (const [name, make, message] of cases) {
    test(name, async () => {
      const path = fresh('bad');
      make(path);
      const before = sha(path);
      const size = statSync(path).size;
      await assert.rejects(openStore({ path }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'DB_CORRUPT', e.message);
        assert.match(e.message, message);
        return true;
      });
      assert.equal(sha(path), before);
      assert.equal(statSync(path).size, size);
      assert.equal(existsSync(`${path}.lock`), false, 'the lock is released');
    });
  }
});

describe('kill -9', () => {
  test('every write a killed child acknowledged is there after restart', async () => {
    for (const [label, compactBytes] of [['plain', 16 * 1024 * 1024], ['compacting often', 4096]] as const) {
      const path = fresh('kill');
      const child = spawn(process.execPath, [join(ROOT, 'dist/test/helpers/store-writer.js'), path, String(compactBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
      const { acked, enough } = acknowledged(child, 1500);
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await enough;
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      const store = await openStore({ path });
      const missing: bigint[] = [];
      for (const s of acked) if (!(await store.findBySerial(s))) missing.push(s);
      assert.deepEqual(missing, [], `${label}: acknowledged ${acked.length}, missing ${missing.length}`);
      await store.close();
      assert.equal(sqlite(path, 'PRAGMA integrity_check'), 'ok');
    }
  });
});

test('a database made here is one the sqlite3 tool reads', async () => {
  const path = fresh('sqlite3');
  const store = await openStore({ path });
  await store.recordIssued(cert(1795721654822870144n, 'x'));
  await store.close();
  assert.equal(sqlite(path, 'SELECT id, serial FROM certs'), 'x|1795721654822870144');
});
