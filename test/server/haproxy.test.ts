import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { enrol } from '../helpers/enrolling.js';
import { haproxyConfig, haproxyUnavailable, README_HAPROXY, startHaproxy } from '../helpers/haproxy.js';
import { pgUnavailable, startPostgres, type PgCluster } from '../helpers/pg.js';
import { openssl, ROOT, tempDir } from '../helpers/run.js';
import { freePort, httpsRequest, identity, makeCaDir, spawnServer, tlsFiles, type TestServer } from '../helpers/server.js';

const skip = pgUnavailable() ?? haproxyUnavailable();

test('the README shows the haproxy configuration this test runs', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Several servers on PostgreSQL'));
  assert.ok(section.length > 0, 'the README has the section');
  assert.ok(section.includes('```\n' + haproxyConfig(README_HAPROXY) + '```'), 'the README block is haproxyConfig(README_HAPROXY), byte for byte');
});

describe('two servers on one PostgreSQL behind haproxy (TCP, TLS passed through)', { skip }, () => {
  let pg: PgCluster;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  test('devices enrol through it; one server killed with SIGKILL mid-run; every enrolment after the kill succeeds and every certificate received is Status 1', async (t) => {
    const url = await pg.createDatabase();
    const a = tempDir('liteboot-lb-a-');
    const b = tempDir('liteboot-lb-b-');
    const lb = tempDir('liteboot-lb-');
    // One CA and one server certificate (for `localhost`, the name devices use for the balancer) on both.
    await makeCaDir(a.dir);
    cpSync(join(a.dir, 'certs'), join(b.dir, 'certs'), { recursive: true });
    for (const d of [a.dir, b.dir]) writeFileSync(join(d, '.liteboot.toml'), `[server]\nhubname = "test-hub"\nmqttport = 8883\ndb = "${url}"\n`);
    const servers: TestServer[] = [];
    let proxy: Awaited<ReturnType<typeof startHaproxy>> | undefined;
    try {
      servers.push(await spawnServer(a.dir, a.cleanup), await spawnServer(b.dir, b.cleanup));
      const [sa, sb] = servers as [TestServer, TestServer];
      const port = await freePort();
      const config = haproxyConfig({ bind: `127.0.0.1:${port}`, backends: [{ name: 'a', address: `127.0.0.1:${sa.port}` }, { name: 'b', address: `127.0.0.1:${sb.port}` }] });
      proxy = await startHaproxy(lb.dir, config, port);

      // Real TLS through the balancer: openssl checks the chain and the name devices use.
      const v = openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-verify_hostname', 'localhost', '-verify_return_error', '-CAfile', join(a.dir, 'certs', 'CA.crt'), '-cert', join(a.dir, 'certs', 'BOOTSTRAP.crt'), '-key', join(a.dir, 'certs', 'BOOTSTRAP.key')], { input: 'Q\n', encoding: 'utf8' });
      assert.match(v.stdout, /Verify return code: 0 \(ok\)/, v.stderr);

      const tls = tlsFiles(a.dir, identity(a.dir, 'BOOTSTRAP'));
      // A new TLS connection per device, as a device makes it: the balancer spreads them.
      const load = enrol({ port, tls, clients: 4, keepAlive: false, timeoutMs: 20_000, attempts: 5 });
      let killedAt = 0;
      try {
        const issued = (s: TestServer) => (s.stderr().match(/POST \/api\/v1\/cr 200/g) ?? []).length;
        await Promise.all([sa.waitForStderr(/POST \/api\/v1\/cr 200/), sb.waitForStderr(/POST \/api\/v1\/cr 200/)]);
        await load.until(() => issued(sa) >= 10 && issued(sb) >= 10, 60_000, 'both servers issuing');
        sa.child.kill('SIGKILL');
        killedAt = performance.now();
        assert.equal(await sa.exited, null, 'killed by the signal');
        await proxy.waitFor(/Server liteboot_api\/a is DOWN/);
        await load.until(() => load.enrolments.filter((e) => e.serial !== undefined && e.startedAt > killedAt).length >= 40, 60_000, '40 enrolments after the kill');
      } finally {
        await load.stop();
      }
      const after = load.enrolments.filter((e) => e.startedAt > killedAt);
      assert.deepEqual(
        load.enrolments.filter((e) => e.serial === undefined).map((e) => ({ answers: e.answers.map((x) => x.status), resets: e.resets })),
        [],
        'every enrolment succeeded, before, across and after the kill (retrying a reset connection)',
      );
      assert.ok(after.length >= 40);
      assert.equal(load.hangs, 0);
      const retried = load.enrolments.filter((e) => e.resets.length > 0);
      t.diagnostic(`enrolments: ${load.enrolments.length}, after the kill: ${after.length}, retried after a reset: ${retried.length} (${[...new Set(retried.flatMap((e) => e.resets))].join(', ') || 'none'})`);

      // Every certificate any client received is answered Status 1 by the surviving server.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (const e of load.acked()) {
        const r = await httpsRequest(sb, tls, 'GET', `/api/v1/cs/${e.serial}`, { agent });
        assert.equal(r.body.toString(), '{"Status":1}\n', `serial ${e.serial}`);
      }
      agent.destroy();
    } finally {
      await proxy?.stop();
      for (const s of servers) {
        if (s.child.exitCode === null && s.child.signalCode === null) assert.equal(await s.stop(), 0, s.stderr().slice(-2000));
        s.cleanup();
      }
      lb.cleanup();
    }
  });
});
