import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isDatabaseUrl, openStoreAt } from '../../src/store/open.js';
import { describeDatabase, libpqUrl } from '../../src/store/pg-store.js';
import { ROOT, run, tempDir } from '../helpers/run.js';

const tmp = tempDir();
after(tmp.cleanup);

test('a PostgreSQL URL or a path', () => {
  for (const s of ['postgres://u@h/db', 'postgresql://h:5433/db?sslmode=require', 'POSTGRES://h/db', ' postgres:///db']) assert.equal(isDatabaseUrl(s), true, s);
  for (const s of ['CADB.db', '/var/lib/liteboot/CADB.db', 'postgres', './postgres://x', 'sqlite://x']) assert.equal(isDatabaseUrl(s), false, s);
});

test('a path opens CADB.db relative to cwd, and never loads the PostgreSQL client', () => {
  // In a child: the module cache shows what was loaded.
  const script = `
    import { createRequire } from 'node:module';
    const { openStoreAt } = await import(${JSON.stringify(join(ROOT, 'dist/src/store/open.js'))});
    const s = await openStoreAt('CADB.db', { cwd: ${JSON.stringify(tmp.dir)} });
    await s.recordIssued({ deviceId: 'd', name: 'n', serial: 1n, keyId: new Uint8Array(20), der: new Uint8Array(1), notBefore: new Date(0), notAfter: new Date(1) });
    await s.close();
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => /node_modules[\\\\/]pg/.test(k));
    console.log(JSON.stringify(loaded));`;
  const r = run(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
  assert.ok(existsSync(join(tmp.dir, 'CADB.db')));
});

test('a URL is opened with the PostgreSQL store (and a message without its password)', async () => {
  // Port 1 on loopback: nothing listens, the refusal is immediate.
  await assert.rejects(openStoreAt('postgresql://fleet:pw-9f3a@127.0.0.1:1/ca'), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'DB_UNAVAILABLE');
    assert.equal(e.message.includes('127.0.0.1:1/ca'), true, e.message);
    assert.equal(e.message.includes('pw-9f3a'), false, e.message);
    return true;
  });
});

test('host:port/db for messages, as libpq resolves a URL, without the password', () => {
  assert.equal(describeDatabase('postgres://u:secret@db.example:6432/fleet'), 'db.example:6432/fleet');
  assert.equal(describeDatabase('postgres://u:secret@db.example/fleet'), 'db.example:5432/fleet');
  assert.equal(describeDatabase('postgres://alice@db.example'), 'db.example:5432/alice');
  assert.equal(describeDatabase('postgres://u@%2Frun%2Fpg/fleet'), '/run/pg:5432/fleet');
  assert.equal(describeDatabase('postgres:///fleet?host=/run/postgresql'), '/run/postgresql:5432/fleet');
});

test("libpq's TLS modes: uselibpqcompat when sslmode says so; PGSSL* fill in what the URL leaves out", () => {
  assert.equal(libpqUrl('postgres://h/db', {}), 'postgres://h/db');
  assert.equal(libpqUrl('postgres://h/db?sslmode=require', {}), 'postgres://h/db?sslmode=require&uselibpqcompat=true');
  assert.equal(libpqUrl('postgres://h/db', { PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/etc/ca.crt' }), 'postgres://h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt&uselibpqcompat=true');
  assert.equal(libpqUrl('postgres://h/db?sslmode=disable', { PGSSLMODE: 'require' }), 'postgres://h/db?sslmode=disable&uselibpqcompat=true', 'the URL wins');
  assert.equal(libpqUrl('postgres://h/db?sslmode=no-verify', {}), 'postgres://h/db?sslmode=no-verify', "node-postgres's own mode left alone");
});
