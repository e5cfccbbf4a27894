/**
 * The CLI commands that change or read the database directly (`device allow`, `crl`, the
 * credential record of `operator create`) on a PostgreSQL database, beside the running servers:
 * they choose the store by URL as `server start` does (`--db`, `[server] db`, `$LITEBOOT_DB`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pgUnavailable, startPostgres, type PgCluster } from '../helpers/pg.js';
import { liteboot, openssl } from '../helpers/run.js';
import { cborCsrBody, httpsRequest, identity, newDevice, startServer, tlsFiles, type TestServer } from '../helpers/server.js';

const skip = pgUnavailable();

async function enrolStatus(s: TestServer, id: string): Promise<{ status: number; body: string }> {
  const device = await newDevice(s.dir, undefined, id);
  const r = await httpsRequest(s, tlsFiles(s.dir, identity(s.dir, 'BOOTSTRAP')), 'POST', '/api/v1/cr', { headers: { 'Content-Type': 'application/cbor' }, body: cborCsrBody(device.csr) });
  return { status: r.status, body: r.status === 200 ? '' : r.body.toString() };
}

describe('CLI commands on a PostgreSQL database', { skip }, () => {
  let pg: PgCluster;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  test('a second server started from the same directory on the same database is refused: it would share the first one\'s audit log', async () => {
    const url = await pg.createDatabase();
    const s = await startServer({ args: ['--db', url] });
    try {
      const r = liteboot(['server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0', '--http-port', '0', '--metrics-listen', '', '--db', url], { cwd: s.dir });
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, /the audit log .*audit\.jsonl is being written by another liteboot server \(process \d+\): each server needs its own; set audit_log = "PATH" in \[server\]/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      // The first goes on serving.
      assert.equal((await enrolStatus(s, randomUUID())).status, 200);
    } finally {
      await s.stop();
    }
  });

  test('device allow --db URL and $LITEBOOT_DB: a server on that database enrols the allowed devices and refuses another; liteboot crl --db URL', async () => {
    const url = await pg.createDatabase();
    const [early, beside, stranger] = [randomUUID(), randomUUID(), randomUUID()];
    const s = await startServer({
      args: ['--db', url],
      toml: 'enrolment = "allowlist"',
      prepare: (dir) => {
        // Before any server ran on it: the command creates the schema.
        const r = liteboot(['device', 'allow', early, '--db', url], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, '1 device added to the enrolment allowlist (0 already there)\n');
        assert.equal(r.stderr, '');
      },
    });
    try {
      // Beside the running server (no --operator needed: the database is shared), from $LITEBOOT_DB.
      const r = liteboot(['device', 'allow', beside, early], { cwd: s.dir, env: { LITEBOOT_DB: url } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '1 device added to the enrolment allowlist (1 already there)\n');
      assert.equal((await enrolStatus(s, early)).status, 200);
      assert.equal((await enrolStatus(s, beside)).status, 200);
      const refused = await enrolStatus(s, stranger);
      assert.equal(refused.status, 403, refused.body);
      assert.match(refused.body, /device not expected/);

      // [server] db in the directory's .liteboot.toml (no --db): disallow through it.
      writeFileSync(join(s.dir, 'other.toml'), `[server]\ndb = "${url}"\n`);
      const d = liteboot(['device', 'disallow', beside, '--config', 'other.toml'], { cwd: s.dir });
      assert.equal(d.code, 0, d.stderr);
      assert.equal(d.stdout, '1 device removed from the enrolment allowlist (0 already absent)\n');

      // A CRL from the shared database, signed by the CA, numbered after the server's.
      const c = liteboot(['crl', '--pem', '--db', url], { cwd: s.dir });
      assert.equal(c.code, 0, c.stderr);
      const v = openssl(['crl', '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-noout', '-crlnumber'], { input: c.stdout });
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stderr, /verify OK/);
      assert.match(v.stdout, /^crlNumber=0x[0-9A-F]+\n$/);

      // A new operator credential is recorded in the shared database at once (revocable by serial).
      const o = liteboot(['operator', 'create', 'bob', '--db', url], { cwd: s.dir });
      assert.equal(o.code, 0, o.stderr);
      assert.match(o.stdout, /^recorded it in postgres:\/\/liteboot:\*\*\*@127\.0\.0\.1:\d+\/\w+ \(serial \d+\)$/m);
      assert.doesNotMatch(s.stderr(), /error/i);
    } finally {
      assert.equal(await s.stop(), 0, s.stderr().slice(-3000));
      s.cleanup();
    }
  });
});
