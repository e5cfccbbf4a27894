import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { enrol } from '../helpers/enrolling.js';
import { pgUnavailable, startPostgres, type PgCluster } from '../helpers/pg.js';
import { toPem } from '../../src/asn1/pem.js';
import { liteboot, openssl, tempDir } from '../helpers/run.js';
import { cborCsrBody, freePort, httpsRequest, identity, makeCaDir, newDevice, startServer, tlsFiles } from '../helpers/server.js';

const skip = pgUnavailable();

describe('a server on PostgreSQL when the database is away', { skip }, () => {
  let pg: PgCluster;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  test('PostgreSQL unreachable at start: one clear line on stderr, exit 1, no stack', async () => {
    const t = tempDir('liteboot-pgdown-');
    try {
      await makeCaDir(t.dir);
      const port = await freePort(); // nothing listens there
      const cases: [string, RegExp][] = [
        [`postgres://liteboot:secret@127.0.0.1:${port}/liteboot`, new RegExp(`^liteboot: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}/liteboot \\(.*ECONNREFUSED.*\\); retry later\\n$`)],
        [pg.url.replace(`:${pg.password}@`, ':wrong@'), /^liteboot: PostgreSQL at 127\.0\.0\.1:\d+\/postgres refused us: 28P01: password authentication failed for user "liteboot"\n$/],
      ];
      for (const [url, re] of cases) {
        const r = liteboot(['server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0', '--http-port', '0', '--metrics-listen', '', '--db', url], { cwd: t.dir });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, re);
        assert.doesNotMatch(r.stderr, /secret|wrong/, 'never the password');
        assert.equal(r.stdout, '', 'never "serving"');
      }
    } finally {
      t.cleanup();
    }
  });

  test('PostgreSQL restarted under load: 503 with Retry-After meanwhile, no hang, recovery without a restart, nothing acknowledged lost', async () => {
    const url = await pg.createDatabase();
    const REQUEST_TIMEOUT_S = 10;
    const s = await startServer({ args: ['--db', url], toml: `request_timeout = ${REQUEST_TIMEOUT_S}` });
    try {
      const tls = tlsFiles(s.dir, identity(s.dir, 'BOOTSTRAP'));
      // A few devices on keep-alive connections, one after another each; an answer that takes
      // longer than the request timeout (plus a margin) counts as a hang.
      const load = enrol({ port: s.port, tls, clients: 4, keepAlive: true, timeoutMs: (REQUEST_TIMEOUT_S + 5) * 1000, attempts: 1 });
      const summary = () => JSON.stringify({ enrolments: load.enrolments.length, resets: load.enrolments.flatMap((e) => e.resets).slice(0, 5), statuses: load.enrolments.flatMap((e) => e.answers.map((a) => a.status)).slice(-10), log: s.stderr().slice(-1500) });
      const answered = (status: number, since = 0) => load.enrolments.filter((e) => e.answers.some((a) => a.status === status && a.at >= since)).length;
      try {
        await load.until(() => answered(200) >= 20, 60_000, '20 enrolments before the outage', summary);
        await pg.halt();
        const down = performance.now();
        await load.until(() => answered(503, down) >= 10, 30_000, '10 answers of 503 while PostgreSQL is down', summary);
        await pg.resume();
        const up = performance.now();
        // The same server process, the same keep-alive connections: it recovers by itself.
        await load.until(() => load.enrolments.filter((e) => e.serial !== undefined && e.answers[0]!.at >= up).length >= 20, 60_000, '20 enrolments after PostgreSQL came back', summary);
        // And a plain restart (stop, start at once) in the middle of the load: recovered again.
        await pg.restart();
        const again = performance.now();
        await load.until(() => load.enrolments.filter((e) => e.serial !== undefined && e.answers[0]!.at >= again).length >= 20, 60_000, '20 enrolments after a restart', summary);
      } finally {
        await load.stop();
      }
      const answers = load.enrolments.flatMap((e) => e.answers);
      const statuses = new Map<number, number>();
      for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      assert.deepEqual([...statuses.keys()].sort(), [200, 503], `only 200 and 503 (${JSON.stringify([...statuses])})`);
      for (const a of answers.filter((x) => x.status === 503)) assert.equal(a.retryAfter, '2', 'every 503 says Retry-After');
      assert.equal(load.hangs, 0, 'no request hung');
      const slowest = Math.max(...answers.map((a) => a.ms));
      assert.ok(slowest < REQUEST_TIMEOUT_S * 1000, `every answer within the request timeout (slowest ${slowest.toFixed(0)} ms)`);
      assert.deepEqual(load.enrolments.filter((e) => e.resets.length > 0).map((e) => e.resets), [], 'no connection was reset');
      assert.equal(s.child.exitCode, null, 'the server never stopped');
      await s.waitForStderr(/POST \/api\/v1\/cr 503/);
      assert.doesNotMatch(s.stderr(), /POST \/api\/v1\/cr 500/);

      // Every certificate a client received is in the database: `cs` says Status 1.
      const acked = load.acked();
      assert.ok(acked.length >= 60);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (const e of acked) {
        const r = await httpsRequest(s, tls, 'GET', `/api/v1/cs/${e.serial}`, { agent });
        assert.equal(r.body.toString(), '{"Status":1}\n', `serial ${e.serial} (${e.id})`);
      }
      agent.destroy();
    } finally {
      assert.equal(await s.stop(), 0, s.stderr().slice(-3000));
      s.cleanup();
    }
  });

  test('PostgreSQL that stops answering (SIGSTOP): 503 with Retry-After within the request timeout, never a hang; back when it answers again', async () => {
    const url = await pg.createDatabase();
    const REQUEST_TIMEOUT_S = 10;
    const s = await startServer({ args: ['--db', url], toml: `request_timeout = ${REQUEST_TIMEOUT_S}` });
    // The postmaster and every backend: a database host that froze (no RST, no FIN, just silence).
    const cluster = () => [pg.pid, ...readFileSync(`/proc/${pg.pid}/task/${pg.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)];
    let frozen: number[] = [];
    try {
      const tls = tlsFiles(s.dir, identity(s.dir, 'BOOTSTRAP'));
      const load = enrol({ port: s.port, tls, clients: 4, keepAlive: true, timeoutMs: (REQUEST_TIMEOUT_S + 5) * 1000, attempts: 1 });
      const done = (since: number) => load.enrolments.filter((e) => e.serial !== undefined && e.answers[0]!.at >= since).length;
      try {
        await load.until(() => done(0) >= 10, 60_000, '10 enrolments before the freeze');
        frozen = cluster();
        for (const p of frozen) process.kill(p, 'SIGSTOP');
        const at = performance.now();
        await load.until(() => load.enrolments.filter((e) => e.answers.some((a) => a.status === 503 && a.at >= at)).length >= 4, 60_000, 'a 503 for each client while PostgreSQL is frozen');
        for (const p of frozen.splice(0)) process.kill(p, 'SIGCONT');
        const thawed = performance.now();
        await load.until(() => done(thawed) >= 10, 60_000, '10 enrolments after PostgreSQL answers again');
      } finally {
        for (const p of frozen) process.kill(p, 'SIGCONT');
        await load.stop();
      }
      const answers = load.enrolments.flatMap((e) => e.answers);
      assert.deepEqual([...new Set(answers.map((a) => a.status))].sort(), [200, 503]);
      for (const a of answers.filter((x) => x.status === 503)) assert.equal(a.retryAfter, '2');
      assert.equal(load.hangs, 0, 'no request hung');
      const slowest = Math.max(...answers.map((a) => a.ms));
      assert.ok(slowest < REQUEST_TIMEOUT_S * 1000, `every answer within the request timeout (slowest ${slowest.toFixed(0)} ms)`);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (const e of load.acked()) {
        const r = await httpsRequest(s, tls, 'GET', `/api/v1/cs/${e.serial}`, { agent });
        assert.equal(r.body.toString(), '{"Status":1}\n', `serial ${e.serial}`);
      }
      agent.destroy();
    } finally {
      assert.equal(await s.stop(), 0, s.stderr().slice(-3000));
      s.cleanup();
    }
  });
  test('the public listener while PostgreSQL is down: OCSP answers tryLater, /crl keeps serving the last CRL; both normal again after', async () => {
    const url = await pg.createDatabase();
    const s = await startServer({ args: ['--db', url, '--http-port', String(await freePort())] });
    try {
      const ca = join(s.dir, 'certs', 'CA.crt');
      const device = await newDevice(s.dir);
      const r = await httpsRequest(s, tlsFiles(s.dir, identity(s.dir, 'BOOTSTRAP')), 'POST', '/api/v1/cr', { headers: { 'Content-Type': 'application/cbor' }, body: cborCsrBody(device.csr) });
      assert.equal(r.status, 200, r.body.toString());
      const cert = join(s.dir, 'device.crt');
      writeFileSync(cert, toPem('CERTIFICATE', r.body.subarray(7)));
      const ocsp = () => openssl(['ocsp', '-issuer', ca, '-CAfile', ca, '-cert', cert, '-url', `http://127.0.0.1:${s.httpPort}/ocsp`]);
      const crl = async () => {
        const res = await fetch(`http://127.0.0.1:${s.httpPort}/crl`);
        const body = Buffer.from(await res.arrayBuffer());
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body, verify: res.status === 200 ? openssl(['crl', '-inform', 'DER', '-CAfile', ca, '-noout'], { input: body }) : undefined };
      };
      const good = ocsp();
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /device\.crt: good\n/);
      const before = await crl();
      assert.equal(before.status, 200);
      assert.match(before.verify!.stderr, /verify OK/);

      await pg.halt();
      const o = ocsp();
      assert.match(o.stdout + o.stderr, /Responder Error: trylater \(3\)/);
      assert.doesNotMatch(o.stdout + o.stderr, /good|revoked|unknown/);
      const during = await crl();
      assert.equal(during.status, 200, during.body.toString());
      assert.match(during.verify!.stderr, /verify OK/);
      assert.deepEqual(during.body, before.body, 'the last CRL built, as it was');

      await pg.resume();
      // The pool reconnects on demand: the first OCSP request after the restart may still meet a dead connection.
      let again = ocsp();
      for (let i = 0; i < 20 && !/device\.crt: good/.test(again.stdout); i++) again = ocsp();
      assert.match(again.stdout, /device\.crt: good\n/, again.stdout + again.stderr);
      const after = await crl();
      assert.equal(after.status, 200);
      assert.match(after.verify!.stderr, /verify OK/);
      assert.doesNotMatch(s.stderr(), / 500 /);
    } finally {
      assert.equal(await s.stop(), 0, s.stderr().slice(-3000));
      s.cleanup();
    }
  });

  test('SIGTERM during a PostgreSQL outage: stopped cleanly and exited well inside the pool connect timeout', async () => {
    const url = await pg.createDatabase();
    const s = await startServer({ args: ['--db', url] });
    try {
      await pg.halt();
      await s.waitForStderr(/lost the PostgreSQL LISTEN connection/);
      // A request meets the outage (503), the LISTEN connection is in its reconnect loop.
      const device = await newDevice(s.dir);
      const r = await httpsRequest(s, tlsFiles(s.dir, identity(s.dir, 'BOOTSTRAP')), 'POST', '/api/v1/cr', { headers: { 'Content-Type': 'application/cbor' }, body: cborCsrBody(device.csr) });
      assert.equal(r.status, 503);
      const from = s.stderr().length;
      const t0 = performance.now();
      s.child.kill('SIGTERM');
      await s.waitForStderr(/stopped cleanly/, from, 30_000);
      const logged = performance.now() - t0;
      assert.equal(await s.exited, 0, s.stderr().slice(-2000));
      const exited = performance.now() - t0;
      // pgPoolConfig: connectionTimeoutMillis 3000, query_timeout 4500. Closing waits for neither.
      assert.ok(exited < 3000, `stopped cleanly after ${logged.toFixed(0)} ms, exited after ${exited.toFixed(0)} ms`);
    } finally {
      await s.stop();
      s.cleanup();
      await pg.resume();
    }
  });
});
