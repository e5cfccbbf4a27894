import assert from 'node:assert/strict';
import { copyFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toPem } from '../../src/asn1/pem.js';
import { pgUnavailable, startPostgres, type PgCluster } from '../helpers/pg.js';
import { FIXTURE, liteboot, run, tempDir } from '../helpers/run.js';
import { httpsRequest, identity, spawnServer, startServer, tlsFiles, type TestServer } from '../helpers/server.js';

/** The original Go server's devices (test/fixtures/go-liteboot-small/README.md). */
const GO = [
  ['492ca910-8297-4e5e-bc99-a45bf0b3117f', '1795722176495076734', 1],
  ['3e100bab-74d5-472d-a213-dae9e38160e6', '1795722176688618130', 1],
  ['d1685f60-7c96-46ed-b319-7e8e26d7313a', '1795722176878240957', 1],
  ['23d80612-09d7-4181-9b14-24c1173f7028', '1795722177070195647', 0],
] as const;

interface CopyJson {
  source: { counts: Record<string, number>; checksum: string };
  target: { counts: Record<string, number>; checksum: string };
  settings: { copied: number; missing: string[] };
  equal: boolean;
}

function psql(url: string, sql: string): string {
  const r = run('psql', ['-X', '-tA', '-d', url, '-c', sql], { encoding: 'utf8' });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

const skip = pgUnavailable();

describe('liteboot db copy: a Go CADB.db moved into PostgreSQL', { skip }, () => {
  let pg: PgCluster;
  let url: string;
  const t = tempDir('liteboot-copy-');
  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
    copyFileSync(join(FIXTURE, 'CADB.db'), join(t.dir, 'CADB.db'));
  });
  after(async () => {
    await pg?.stop();
    t.cleanup();
  });

  test('copies every row, prints equal counts and checksums, and refuses a non-empty target without --force', () => {
    const before = readFileSync(join(t.dir, 'CADB.db'));
    const r = liteboot(['db', 'copy', '--from', 'CADB.db', '--to', url, '--json'], { cwd: t.dir });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as CopyJson;
    assert.deepEqual(out.source.counts, { certificates: 4, revoked: 1, devices: 4, credentials: 0, allowlist: 0 });
    assert.deepEqual(out.target.counts, out.source.counts);
    assert.match(out.source.checksum, /^[0-9a-f]{64}$/);
    assert.equal(out.target.checksum, out.source.checksum);
    assert.deepEqual(out.settings, { copied: 1, missing: [] });
    assert.equal(out.equal, true);
    assert.ok(readFileSync(join(t.dir, 'CADB.db')).equals(before), 'the source file is left as it was');
    // What PostgreSQL itself holds, read by psql: the exact 64-bit serials and the revocation.
    assert.equal(psql(url, 'SELECT serial::text || \'|\' || valid FROM certs ORDER BY serial'), GO.map(([, s, v]) => `${s}|${v ? 'true' : 'false'}`).sort().join('\n'));
    for (const [id, serial] of GO) {
      const der = readFileSync(join(FIXTURE, 'devices', `${id}.rsp`)).subarray(7);
      assert.equal(psql(url, `SELECT encode(cert, 'hex') FROM certs WHERE serial = ${serial}`), der.toString('hex'), `certificate ${serial} byte for byte`);
    }
    assert.equal(psql(url, `SELECT value FROM settings WHERE key = 'uuid'`), '9b0eeab1-1f8f-4496-aa15-3b07d4948692');

    const again = liteboot(['db', 'copy', '--from', 'CADB.db', '--to', url], { cwd: t.dir });
    assert.equal(again.code, 1);
    assert.equal(again.stdout, '');
    assert.match(again.stderr, /^liteboot: postgres:\/\/liteboot:\*\*\*@127\.0\.0\.1:\d+\/\w+ is not empty \(4 certificates, 4 devices, 0 credentials, 0 allowlist entries\); refusing to copy into it \(--force replaces them\)\n$/);
    assert.doesNotMatch(again.stderr, new RegExp(pg.password), 'never the password');
    assert.equal(psql(url, 'SELECT count(*) FROM certs'), '4', 'nothing changed');
    // The password as libpq's query parameter instead of in the userinfo: masked as well.
    const q = new URL(url);
    q.password = '';
    q.searchParams.set('password', pg.password);
    const again2 = liteboot(['db', 'copy', '--from', 'CADB.db', '--to', q.toString()], { cwd: t.dir });
    assert.equal(again2.code, 1, again2.stderr);
    assert.match(again2.stderr, /^liteboot: postgres:\/\/liteboot@127\.0\.0\.1:\d+\/\w+\?password=\*\*\* is not empty /);
    assert.doesNotMatch(again2.stderr, new RegExp(pg.password), 'never the password');

    const f = liteboot(['db', 'copy', '--from', 'CADB.db', '--to', url, '--force'], { cwd: t.dir });
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /^source .*: 4 certificates \(1 revocations\), 4 devices, .*; checksum ([0-9a-f]{64})\ntarget .*; checksum \1\n/);
    assert.match(f.stdout, /both sides are equal\n$/);
    assert.equal(psql(url, 'SELECT count(*) FROM certs'), '4', '--force replaced the rows, it did not add to them');

    // And back: PostgreSQL into a new CADB.db, the same checksum as the Go file's.
    const back = liteboot(['db', 'copy', '--from', url, '--to', 'back.db', '--json'], { cwd: t.dir });
    assert.equal(back.code, 0, back.stderr);
    const b = JSON.parse(back.stdout) as CopyJson;
    assert.equal(b.equal, true);
    assert.equal(b.target.checksum, out.source.checksum);
    const rows = run('sqlite3', [join(t.dir, 'back.db'), 'SELECT CAST(serial AS TEXT) || \'|\' || valid FROM certs ORDER BY serial'], { encoding: 'utf8' });
    assert.equal(rows.stdout.trim(), GO.map(([, s, v]) => `${s}|${v}`).sort().join('\n'), 'sqlite3 reads the exact serials back');
    const over = liteboot(['db', 'copy', '--from', url, '--to', 'back.db'], { cwd: t.dir });
    assert.equal(over.code, 1);
    assert.match(over.stderr, /^liteboot: refusing to overwrite .*back\.db\n$/);
  });

  // Runs on the copy the test above made (the tests of a describe run in order).
  test('a server on the copy answers cs, ds and cc with the same bytes as a sql.js server on the Go file', async () => {
    // A fresh CA signs the TLS credentials (the fixture CA's validity window must not matter); both
    // servers share it, and serve the Go rows as they are: one from CADB.db, one from PostgreSQL.
    const file = await startServer({ prepare: (dir) => copyFileSync(join(FIXTURE, 'CADB.db'), join(dir, 'CADB.db')) });
    let onPg: TestServer | undefined;
    try {
      const pgDir = tempDir('liteboot-copy-srv-');
      cpSync(join(file.dir, 'certs'), join(pgDir.dir, 'certs'), { recursive: true });
      writeFileSync(join(pgDir.dir, '.liteboot.toml'), `[server]\nhubname = "test-hub"\nmqttport = 8883\n`);
      onPg = await spawnServer(pgDir.dir, pgDir.cleanup, ['--db', url]);
      assert.match(onPg.stdout(), /, database postgres:\/\/liteboot:\*\*\*@127\.0\.0\.1:\d+\/\w+[,)]/, 'the start line names the database without its password');
      assert.ok(!onPg.stdout().includes(pg.password) && !onPg.stderr().includes(pg.password), 'never the password');
      const tls = tlsFiles(file.dir, identity(file.dir, 'BOOTSTRAP'));
      const agents = [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })];
      const ask = async (path: string, format: 'json' | 'cbor') => {
        const headers = format === 'cbor' ? { 'Content-Type': 'application/cbor', Accept: 'application/cbor' } : {};
        const [a, b] = await Promise.all([httpsRequest(file, tls, 'GET', path, { headers, agent: agents[0] }), httpsRequest(onPg!, tls, 'GET', path, { headers, agent: agents[1] })]);
        assert.equal(b.status, a.status, `${path} (${format}): status`);
        assert.equal(b.body.toString('hex'), a.body.toString('hex'), `${path} (${format}): the same bytes from PostgreSQL as from CADB.db`);
        return a;
      };
      for (const [id, serial, valid] of GO) {
        for (const format of ['json', 'cbor'] as const) {
          await ask(`/api/v1/cs/${serial}`, format);
          await ask(`/api/v1/ds/${id}`, format);
          await ask(`/api/v1/ds/${id.toUpperCase()}`, format);
          await ask(`/api/v1/cc/${serial}`, format);
        }
        // And they are what the Go server answered (not merely equal to each other).
        assert.equal((await ask(`/api/v1/cs/${serial}`, 'json')).body.toString(), `{"Status":${valid}}\n`);
        if (valid) {
          const der = readFileSync(join(FIXTURE, 'devices', `${id}.rsp`)).subarray(7);
          assert.equal((await ask(`/api/v1/cc/${serial}`, 'json')).body.toString(), `{"Status":0,"Cert":${JSON.stringify(toPem('CERTIFICATE', der))}}\n`);
          assert.equal((await ask(`/api/v1/ds/${id}`, 'json')).body.toString(), `{"Status":1,"Serials":[${serial}]}\n`);
        } else {
          assert.equal((await ask(`/api/v1/cc/${serial}`, 'json')).status, 400);
          assert.equal((await ask(`/api/v1/ds/${id}`, 'json')).body.toString(), '{"Status":0,"Serials":null}\n');
        }
      }
      await ask('/api/v1/cs/1795722177070195648', 'json'); // unknown: the same 400 from both
      for (const a of agents) a.destroy();
    } finally {
      assert.equal(await file.stop(), 0);
      file.cleanup();
      if (onPg) {
        assert.equal(await onPg.stop(), 0, onPg.stderr());
        onPg.cleanup();
      }
    }
  });

  test('bad targets: one line each, nothing written', () => {
    const cases: [string[], RegExp, number][] = [
      [['--to', 'other.db'], /^liteboot: --to must be a postgres:\/\/ URL, not "other\.db" \(for a copy of CADB\.db as a file, use liteboot db backup\)\n$/, 2],
      [['--to', url.replace(/:\d+\//, ':1/')], /^liteboot: cannot reach PostgreSQL at 127\.0\.0\.1:1\/\w+ \(connect ECONNREFUSED 127\.0\.0\.1:1\); retry later\n$/, 1],
      [['--to', url.replace(`:${pg.password}@`, ':wrong@')], /^liteboot: PostgreSQL at 127\.0\.0\.1:\d+\/\w+ refused us: 28P01: password authentication failed for user "liteboot"\n$/, 1],
    ];
    for (const [args, re, code] of cases) {
      const r = liteboot(['db', 'copy', '--from', 'CADB.db', ...args], { cwd: t.dir });
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack');
    }
    const backup = liteboot(['db', 'backup', 'x.db', '--db', url], { cwd: t.dir });
    assert.equal(backup.code, 2);
    assert.match(backup.stderr, /^liteboot: db backup copies CADB\.db; back up the PostgreSQL database postgres:\/\/liteboot:\*\*\*@[^ ]+ with its own tools: pg_dump/);
  });

  test('db migrate applies the schema once and prints the version; again changes nothing', async () => {
    const fresh = await pg.createDatabase();
    const a = liteboot(['db', 'migrate', '--db', fresh, '--json'], { cwd: t.dir });
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(JSON.parse(a.stdout), { db: fresh.replace(`:${pg.password}@`, ':***@'), schemaVersion: 'liteboot-2', migratedFrom: '' });
    const tables = psql(fresh, `SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'`);
    assert.equal(tables, 'allowed_devices,certs,credentials,devices,settings');
    const b = liteboot(['db', 'migrate', '--db', fresh], { cwd: t.dir });
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /^postgres:\/\/liteboot:\*\*\*@127\.0\.0\.1:\d+\/\w+: schema version liteboot-2 \(up to date already\)\n$/);
    const env = liteboot(['db', 'migrate'], { cwd: t.dir, env: { LITEBOOT_DB: fresh } });
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stdout, /schema version liteboot-2/);
    // [server] db in .liteboot.toml, over $LITEBOOT_DB; --db over both.
    const c = tempDir('liteboot-migrate-');
    try {
      writeFileSync(join(c.dir, '.liteboot.toml'), `[server]\ndb = "${fresh}"\n`);
      const toml = liteboot(['db', 'migrate', '--json'], { cwd: c.dir, env: { LITEBOOT_DB: 'postgres://nobody@127.0.0.1:1/none' } });
      assert.equal(toml.code, 0, toml.stderr);
      assert.equal((JSON.parse(toml.stdout) as { db: string }).db, fresh.replace(`:${pg.password}@`, ':***@'));
      const flag = liteboot(['db', 'migrate', '--db', 'postgres://nobody@127.0.0.1:1/none'], { cwd: c.dir });
      assert.equal(flag.code, 1);
      assert.match(flag.stderr, /^liteboot: cannot reach PostgreSQL at 127\.0\.0\.1:1\/none \(connect ECONNREFUSED 127\.0\.0\.1:1\); retry later\n$/);
      const path = liteboot(['db', 'migrate', '--db', 'missing.db'], { cwd: c.dir });
      assert.equal(path.code, 1);
      assert.match(path.stderr, /^liteboot: no database at .*\/missing\.db /, 'a path resolves against the current directory, as before');
    } finally {
      c.cleanup();
    }
  });
});
