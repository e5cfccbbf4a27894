import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { openStoreAt } from '../../src/store/open.js';
import { LOCK_MIGRATE, LOCK_NAMESPACE } from '../../src/store/pg-schema.js';
import { PgStore } from '../../src/store/pg-store.js';
import type { Store } from '../../src/store/types.js';
import { pgUnavailable, startPostgres, type PgCluster } from '../helpers/pg.js';
import { ROOT, run } from '../helpers/run.js';
import { freePort } from '../helpers/server.js';
import { cert, storeContract } from './contract.js';

const skip = pgUnavailable();
let cluster: Promise<PgCluster> | undefined;
/** One throwaway cluster for the file, started on first use; a fresh database per test. */
const pgCluster = () => (cluster ??= startPostgres());
after(async () => {
  if (cluster) await (await cluster).stop();
});

async function openPg(url: string, log?: (m: string) => void): Promise<PgStore> {
  return (await openStoreAt(url, { log })) as PgStore;
}

storeContract(
  'PgStore',
  async () => {
    const url = await (await pgCluster()).createDatabase();
    const opened: Store[] = [];
    const open = async () => {
      const s = await openPg(url);
      opened.push(s);
      return s;
    };
    let store = await open();
    return {
      store,
      twin: open,
      reopen: async () => {
        await store.close();
        store = await open();
        return store;
      },
      watching: (s) => (s as PgStore).watching(),
      close: async () => {
        for (const s of opened) await s.close();
      },
    };
  },
  { skip },
);

const psql = (url: string, sql: string) => {
  const r = run('psql', [url, '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
};

describe('PgStore on a real PostgreSQL', { skip }, () => {
  let c: PgCluster;
  before(async () => {
    c = await pgCluster();
  });

  test('an unreachable database: DB_UNAVAILABLE naming host:port/db, never the password', async () => {
    const port = await freePort(); // nothing listens there
    await assert.rejects(openStoreAt(`postgres://liteboot:s3cr3t-pw@127.0.0.1:${port}/fleet`), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'DB_UNAVAILABLE', e.message);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}/fleet`));
      assert.doesNotMatch(e.message, /s3cr3t/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });

  test('a wrong password: one line naming the database, not the password', async () => {
    const url = new URL(c.url);
    url.password = 'not-the-password';
    await assert.rejects(openStoreAt(url.href), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'BAD_CONFIG', e.message);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${c.port}/postgres`));
      assert.match(e.message, /password authentication failed/);
      assert.doesNotMatch(e.message, /not-the-password/);
      return true;
    });
  });

  test('the password can come from PGPASSWORD (libpq variables are honoured)', async () => {
    const url = new URL(await c.createDatabase());
    url.password = '';
    process.env.PGPASSWORD = c.password;
    try {
      const s = await openStoreAt(url.href);
      assert.deepEqual(await s.stats(), { certificates: 0, devices: 0 });
      await s.close();
    } finally {
      delete process.env.PGPASSWORD;
    }
  });

  test('serials are bigint columns that psql reads as the same decimals; ids keep their case', async () => {
    const url = await c.createDatabase();
    const s = await openPg(url);
    await s.recordIssued(cert(2n ** 63n - 1n, 'Mixed-Case'));
    await s.recordIssued(cert(1795721654822870144n, 'x'));
    await s.close();
    assert.equal(psql(url, 'SELECT id, serial, pg_typeof(serial) FROM certs ORDER BY serial'), 'x|1795721654822870144|bigint\nMixed-Case|9223372036854775807|bigint');
    assert.equal(psql(url, "SELECT value FROM settings WHERE key = 'schemaVersion'"), 'liteboot-2');
  });

  test('several servers starting together on an empty database: the schema is made once', async () => {
    const url = await c.createDatabase();
    const logs: string[] = [];
    const stores = await Promise.all([...Array(4)].map(() => openPg(url, (m) => logs.push(m))));
    assert.equal(logs.filter((l) => l.includes('migrated')).length, 1, logs.join('\n'));
    await stores[0]!.recordIssued(cert(1n));
    for (const s of stores) assert.equal((await s.stats()).certificates, 1);
    for (const s of stores) await s.close();
  });

  test('a server starting while another migrates for longer than a request bound waits for it (lock_timeout, not query_timeout)', async () => {
    const url = await c.createDatabase();
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, LOCK_MIGRATE]);
    const started = Date.now();
    const opening = openPg(url, () => {});
    // Held for 6 s: beyond the pool's 4.5 s query bound, well within the 60 s migration lock bound.
    const released = new Promise<void>((res) => setTimeout(() => void holder.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, LOCK_MIGRATE]).then(() => res()), 6000));
    const store = await opening;
    await released;
    assert.ok(Date.now() - started >= 5900, 'opened before the lock was released');
    await store.recordIssued(cert(7n));
    assert.equal((await store.stats()).certificates, 1);
    await store.close();
    await holder.end();
  });

  test('a newer schema is refused in one line and left untouched; read-only needs a migrated database', async () => {
    const url = await c.createDatabase();
    await assert.rejects(openStoreAt(url, { readOnly: true }), /no liteboot schema yet; run `liteboot db migrate`/);
    const s = await openPg(url);
    await s.recordIssued(cert(5n));
    await s.close();
    const ro = await openStoreAt(url, { readOnly: true });
    assert.equal((await ro.findBySerial(5n))?.serial, 5n);
    await assert.rejects(ro.recordIssued(cert(6n)), (e: Error & { code?: string }) => e.code === 'DB_READONLY');
    assert.equal(ro.writeFailure()?.message.includes('read-only'), true);
    await ro.close();
    psql(url, "UPDATE settings SET value = 'liteboot-99' WHERE key = 'schemaVersion'");
    await assert.rejects(openStoreAt(url), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'DB_CORRUPT');
      assert.match(e.message, /schema version "liteboot-99", which this liteboot does not know/);
      return true;
    });
    assert.equal(psql(url, "SELECT value FROM settings WHERE key = 'schemaVersion'"), 'liteboot-99');
    assert.equal(psql(url, 'SELECT count(*) FROM certs'), '1');
  });

  test('every acknowledged write survives an immediate shutdown (crash recovery)', async () => {
    const url = await c.createDatabase();
    const s = await openPg(url);
    const acked: bigint[] = [];
    let stop = false;
    let reached = () => {};
    const enough = new Promise<void>((r) => (reached = r));
    // 8 writers at once; the database is shut down under them without a checkpoint
    const writers = [...Array(8)].map(async (_, w) => {
      for (let i = 1; !stop; i++) {
        const serial = BigInt(w * 1_000_000 + i);
        try {
          await s.recordIssued(cert(serial, `dev-${w}`, { keyId: Buffer.alloc(20, w) }), { at: new Date('2026-06-01T00:00:00Z') });
          if (acked.push(serial) === 400) reached();
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'DB_UNAVAILABLE', String(e));
          return;
        }
      }
    });
    await enough;
    await c.halt('SIGQUIT');
    stop = true;
    await Promise.all(writers);
    await c.resume();
    const recorded = new Set(psql(url, 'SELECT serial FROM certs').split('\n'));
    const missing = acked.filter((x) => !recorded.has(x.toString()));
    assert.deepEqual(missing, [], `acknowledged ${acked.length}, missing ${missing.length}`);
    await s.close();
  });

  test('PostgreSQL restarted under the store: DB_UNAVAILABLE meanwhile, then it recovers by itself, watch included', async () => {
    const url = await c.createDatabase();
    const a = await openPg(url);
    const b = await openPg(url);
    await a.recordIssued(cert(1n));
    await a.recordIssued(cert(2n));
    let changes = 0;
    let woke: () => void = () => {};
    b.watch(() => {
      changes++;
      woke();
    });
    await b.watching();
    await c.halt('SIGINT');
    const t0 = Date.now();
    await assert.rejects(a.findBySerial(1n), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'DB_UNAVAILABLE', e.message);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${c.port}/`));
      assert.doesNotMatch(e.message, new RegExp(c.password));
      return true;
    });
    await assert.rejects(a.revoke(1n, 1, new Date()), (e: Error & { code?: string }) => e.code === 'DB_UNAVAILABLE');
    const outage = Date.now() - t0;
    assert.ok(outage < 10_000, `refused within the bound, not hung (${outage} ms)`);
    await c.resume();
    // the pool replaces its dead connections on demand
    assert.equal((await a.findBySerial(1n))?.serial, 1n);
    // the watcher's LISTEN reconnects; a revocation on a wakes b
    await b.watching();
    const before = changes;
    const fired = new Promise<void>((r) => (woke = r));
    await a.revoke(2n, 1, new Date());
    await fired;
    assert.ok(changes > before);
    assert.deepEqual((await b.revocationsSince(0n)).items.map((r) => r.serial), [2n]);
    await a.close();
    await b.close();
  });

  test('a LISTEN connection gone silent (its backend stopped, the TCP connection still open) is found out and replaced: revocations wake the watcher again', async () => {
    const url = await c.createDatabase();
    const a = await openPg(url);
    let noticed: (m: string) => void = () => {};
    const lostLine = new Promise<string>((r) => (noticed = r));
    const b = await PgStore.open({ url, listenCheckMs: 1500, log: (m) => /lost the PostgreSQL LISTEN connection/.test(m) && noticed(m) });
    await a.recordIssued(cert(1n));
    let woke: () => void = () => {};
    b.watch(() => woke());
    await b.watching();
    const pid = Number(psql(url, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"));
    assert.ok(pid > 0, 'the LISTEN backend');
    process.kill(pid, 'SIGSTOP'); // no error, no FIN: the connection just stops answering
    try {
      assert.match(await lostLine, /\(no answer to a check within 1000 ms\); reconnecting/);
      await b.watching();
      const fired = new Promise<void>((r) => (woke = r));
      await a.revoke(1n, 1, new Date());
      await fired;
      assert.deepEqual((await b.revocationsSince(0n)).items.map((r) => r.serial), [1n]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await a.close();
    await b.close();
  });

  test('int8 is never parsed by node-postgres into a number, whatever its global parsers say', async () => {
    const url = await c.createDatabase();
    pg.types.setTypeParser(20, (v: string) => Number(v)); // another module's global change
    try {
      const s = await openPg(url);
      await s.recordIssued(cert(2n ** 63n - 1n, 'x'));
      assert.deepEqual(await s.validSerials('x'), [2n ** 63n - 1n]);
      assert.equal(await s.maxSerial(), 2n ** 63n - 1n);
      await s.close();
    } finally {
      pg.types.setTypeParser(20, (v: string) => v);
    }
  });
});

describe('TLS to the database, as libpq reads the URL', { skip }, () => {
  let c: PgCluster;
  before(async () => {
    c = await startPostgres({ tls: true });
  });
  after(async () => {
    await c?.stop();
  });
  /** Whether this store's own connections are encrypted (pg_stat_ssl of the backends named liteboot). */
  const encrypted = async (s: Store) => {
    await s.stats(); // at least one connection of ours is up
    const r = psql(c.url, "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'liteboot'");
    return r;
  };

  test('sslmode=verify-full with sslrootcert: verified and encrypted; a wrong CA is refused in one line', async () => {
    const url = new URL(await c.createDatabase());
    url.searchParams.set('sslmode', 'verify-full');
    url.searchParams.set('sslrootcert', c.caFile!);
    const s = await openStoreAt(url.href);
    assert.equal(await encrypted(s), 't');
    await s.close();
    url.searchParams.set('sslrootcert', join(ROOT, 'test', 'fixtures', 'go-liteboot-small', 'certs', 'CA.crt'));
    await assert.rejects(openStoreAt(url.href), (e: Error & { code?: string }) => {
      assert.match(e.message, /127\.0\.0\.1:\d+\//);
      assert.doesNotMatch(e.message, /\n/);
      assert.doesNotMatch(e.message, new RegExp(c.password));
      return true;
    });
    url.searchParams.set('sslrootcert', join(c.caFile!, '..', 'missing.crt'));
    await assert.rejects(openStoreAt(url.href), (e: Error & { code?: string }) => e.code === 'BAD_CONFIG' && /no such file/.test(e.message));
  });

  test('sslmode=require encrypts without verifying (libpq), also from PGSSLMODE', async () => {
    const url = new URL(await c.createDatabase());
    url.searchParams.set('sslmode', 'require');
    const s = await openStoreAt(url.href);
    assert.equal(await encrypted(s), 't');
    await s.close();
    const other = await c.createDatabase();
    process.env.PGSSLMODE = 'require';
    try {
      const e = await openStoreAt(other);
      assert.equal(await encrypted(e), 't');
      await e.close();
    } finally {
      delete process.env.PGSSLMODE;
    }
    const plain = await openStoreAt(await c.createDatabase());
    assert.equal(await encrypted(plain), 'f', 'without sslmode: as the server allows, here plain');
    await plain.close();
  });
});
