/**
 * The threat model: the bootstrap private key is in every device's firmware, so anyone may hold
 * it. These tests attack the real server as such a stranger would (curl and openssl with the
 * bootstrap credential) and check that each attack fails.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bodyFile, cborCsrBody, curl, identity, newDevice, startServer, type CurlResult, type TestServer } from '../helpers/server.js';
import { liteboot, openssl } from '../helpers/run.js';

/** Resolves once the server's stderr matches (log lines arrive as events; never a sleep). */
function logged(s: TestServer, re: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!re.test(s.stderr())) return false;
      s.child.stderr!.off('data', onData);
      clearTimeout(timer);
      resolve();
      return true;
    };
    const onData = () => void check();
    const timer = setTimeout(() => {
      s.child.stderr!.off('data', onData);
      reject(new Error(`the server never logged ${re}; it logged:\n${s.stderr()}`));
    }, 30_000);
    s.child.stderr!.on('data', onData);
    check();
  });
}

const json = (d: Uint8Array) => ['-H', 'Content-Type: application/json', '--data-binary', `{"CSR":"${Buffer.from(d).toString('base64')}"}`];

function enrolJson(s: TestServer, who: 'BOOTSTRAP' | 'OPERATOR-alice' | string, csr: Uint8Array): CurlResult {
  return curl(s, identity(s.dir, who), '/api/v1/cr', json(csr));
}

function serialOf(r: CurlResult): bigint {
  assert.equal(r.status, 200, r.body.toString());
  const der = Buffer.from(JSON.parse(r.body.toString()).Cert, 'base64');
  const out = openssl(['x509', '-inform', 'DER', '-noout', '-serial'], { input: der });
  assert.equal(out.code, 0, out.stderr);
  return BigInt('0x' + out.stdout.trim().split('=')[1]);
}

function fileSerial(path: string): string {
  const out = openssl(['x509', '-in', path, '-noout', '-serial']);
  return BigInt('0x' + out.stdout.trim().split('=')[1]).toString();
}

/** curl in the background, so that several requests are in flight at once. */
function curlAsync(s: TestServer, who: string, csr: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(s.dir, 'certs', 'CA.crt'), '--cert', identity(s.dir, who).cert, '--key', identity(s.dir, who).key,
      '--resolve', `localhost:${s.port}:127.0.0.1`, ...json(csr), `https://localhost:${s.port}/api/v1/cr`]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(Number(out || 0))); // 'close': stdout is fully read
  });
}

describe('identity binding: an enrolled device id stays with its key', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('refuses a bootstrap enrolment of an enrolled id with another key (409, both formats, p10cr too), and changes nothing', async () => {
    const real = await newDevice(s.dir);
    const first = serialOf(enrolJson(s, 'BOOTSTRAP', real.csr));
    const attacker = await newDevice(s.dir, undefined, real.id);

    const j = enrolJson(s, 'BOOTSTRAP', attacker.csr);
    assert.equal(j.status, 409);
    assert.equal(j.body.toString(), '{"error":"device already enrolled with another key"}\n');

    const c = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', ['-H', 'Content-Type: application/cbor', '--data-binary', `@${bodyFile(s.dir, cborCsrBody(attacker.csr))}`]);
    assert.equal(c.status, 409);
    // CBOR {"error": "device already enrolled with another key"}
    assert.equal(c.body.toString('hex'), 'a1656572726f72' + '78' + (40).toString(16) + Buffer.from('device already enrolled with another key').toString('hex'));

    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${attacker.csr.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    writeFileSync(join(s.dir, 'attacker.csr'), pem);
    const p = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/p10cr', ['-F', `csrfile=@${join(s.dir, 'attacker.csr')}`]);
    assert.equal(p.status, 409);

    const ds = curl(s, identity(s.dir, 'BOOTSTRAP'), `/api/v1/ds/${real.id}`, ['-H', 'Content-Type: application/json']);
    assert.equal(ds.body.toString(), `{"Status":1,"Serials":[${first}]}\n`);
    await logged(s, new RegExp(`WARN refused a bootstrap enrolment \\(bootstrap:\\d+\\) for ${real.id}: the device is enrolled with another key`));
  });

  it('lets a device re-enrol with the same key (lost storage), an operator give it a new key, and a fully revoked device start over', async () => {
    const real = await newDevice(s.dir);
    const a = serialOf(enrolJson(s, 'BOOTSTRAP', real.csr));
    const again = serialOf(enrolJson(s, 'BOOTSTRAP', real.csr));
    assert.notEqual(again, a);

    const other = await newDevice(s.dir, undefined, real.id);
    const byOperator = serialOf(enrolJson(s, 'OPERATOR-alice', other.csr));
    // Now both keys are bound: either may re-enrol through the bootstrap credential.
    serialOf(enrolJson(s, 'BOOTSTRAP', other.csr));
    for (const serial of [a, again, byOperator]) {
      const r = curl(s, identity(s.dir, 'OPERATOR-alice'), '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${serial},"Reason":1}`]);
      assert.equal(r.status, 200, r.body.toString());
    }
    // One certificate of `other` is still valid, so a third key is still refused ...
    const third = await newDevice(s.dir, undefined, real.id);
    assert.equal(enrolJson(s, 'BOOTSTRAP', third.csr).status, 409);
    // ... until every certificate of the device is revoked.
    const ds = JSON.parse(curl(s, identity(s.dir, 'BOOTSTRAP'), `/api/v1/ds/${real.id}`, ['-H', 'Content-Type: application/json']).body.toString().replace(/(\d{16,})/g, '"$1"'));
    for (const serial of ds.Serials) {
      assert.equal(curl(s, identity(s.dir, 'OPERATOR-alice'), '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${serial}}`]).status, 200);
    }
    serialOf(enrolJson(s, 'BOOTSTRAP', third.csr));
  });

  it('lets exactly one of two simultaneous enrolments of a new id with two keys through', async () => {
    for (let round = 0; round < 6; round++) {
      const id = randomUUID();
      const [k1, k2] = [await newDevice(s.dir, undefined, id), await newDevice(s.dir, undefined, id)];
      const statuses = (await Promise.all([curlAsync(s, 'BOOTSTRAP', k1.csr), curlAsync(s, 'BOOTSTRAP', k2.csr)])).sort();
      assert.deepEqual(statuses, [200, 409], `round ${round}`);
    }
  });
});

describe('allow_rebind = true keeps the original first-come behaviour, and says so', () => {
  it('accepts another key for an enrolled id and warns at start-up', async () => {
    const s = await startServer({ toml: 'allow_rebind = true' });
    try {
      const real = await newDevice(s.dir);
      serialOf(enrolJson(s, 'BOOTSTRAP', real.csr));
      serialOf(enrolJson(s, 'BOOTSTRAP', (await newDevice(s.dir, undefined, real.id)).csr));
      await logged(s, /WARN allow_rebind is on: anyone holding the bootstrap key can take over an enrolled device id/);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});

describe('enrolment = "allowlist": only expected devices', () => {
  let s: TestServer;
  const expected = randomUUID();
  before(async () => {
    s = await startServer({
      toml: 'enrolment = "allowlist"',
      // A factory's list, loaded before the server starts (the database is changed directly).
      prepare: (dir) => {
        writeFileSync(join(dir, 'batch.txt'), `# batch 7\n${expected.toUpperCase()}\n\n`);
        const r = liteboot(['device', 'allow', '--file', 'batch.txt'], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, '1 device added to the enrolment allowlist (0 already there)\n');
      },
    });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('refuses an unexpected id with 403 device not expected, accepts an expected one, and an operator may enrol any', async () => {
    const stranger = await newDevice(s.dir);
    const r = enrolJson(s, 'BOOTSTRAP', stranger.csr);
    assert.equal(r.status, 403);
    assert.equal(r.body.toString(), '{"error":"device not expected"}\n');
    serialOf(enrolJson(s, 'BOOTSTRAP', (await newDevice(s.dir, undefined, expected)).csr));
    serialOf(enrolJson(s, 'OPERATOR-alice', stranger.csr));
  });

  it('device allow / disallow --operator change the list of the running server', async () => {
    const later = await newDevice(s.dir);
    assert.equal(enrolJson(s, 'BOOTSTRAP', later.csr).status, 403);
    const add = liteboot(['device', 'allow', later.id, '--operator', 'alice', '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir });
    assert.equal(add.code, 0, add.stderr);
    serialOf(enrolJson(s, 'BOOTSTRAP', later.csr));

    const gone = await newDevice(s.dir);
    assert.equal(liteboot(['device', 'allow', gone.id, '--operator', 'alice', '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir }).code, 0);
    const rm = liteboot(['device', 'disallow', gone.id, '--operator', 'alice', '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir });
    assert.equal(rm.stdout, '1 device removed from the enrolment allowlist (0 already absent)\n');
    assert.equal(enrolJson(s, 'BOOTSTRAP', gone.csr).status, 403);

    const direct = liteboot(['device', 'allow', gone.id], { cwd: s.dir });
    assert.equal(direct.code, 1);
    assert.match(direct.stderr, /^liteboot: a running server holds CADB\.db; pass --operator NAME to change the allowlist through it\n$/);
    const bad = liteboot(['device', 'allow', 'not-a-uuid'], { cwd: s.dir });
    assert.equal(bad.code, 2);
  });
});

describe('bootstrap and operator credentials are revocable and rotatable', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  const cli = (args: string[]) => liteboot([...args, '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir });

  it('records the credentials found in certs/ at start-up', async () => {
    await logged(s, new RegExp(`recorded the bootstrap credential BOOTSTRAP\\.crt \\(serial ${fileSerial(join(s.dir, 'certs', 'BOOTSTRAP.crt'))}\\)`));
    await logged(s, new RegExp(`recorded the operator credential OPERATOR-alice\\.crt \\(serial ${fileSerial(join(s.dir, 'certs', 'OPERATOR-alice.crt'))}\\)`));
  });

  it('a rotated bootstrap credential enrols; revoking the old one (by file) cuts it off on both ports while the new one keeps working', async () => {
    const made = liteboot(['setup-bootstrap', '--name', 'batch2'], { cwd: s.dir });
    assert.equal(made.code, 0, made.stderr);
    for (const f of ['BOOTSTRAP-batch2.crt', 'BOOTSTRAP-batch2.key', 'bootstrap-batch2_crt.txt', 'bootstrap-batch2_key.txt']) assert.match(made.stdout, new RegExp(`wrote .*/certs/${f.replace('.', '\\.')}\n`));
    assert.match(made.stdout, /the running server records it \(serial \d+\) when it first connects, or at its next start\n/);
    assert.match(openssl(['x509', '-in', join(s.dir, 'certs', 'BOOTSTRAP-batch2.crt'), '-noout', '-subject']).stdout, /CN ?= ?bootstrap-batch2, OU ?= ?LinaroCA Bootstrap Cert/);
    assert.equal(openssl(['verify', '-CAfile', join(s.dir, 'certs', 'CA.crt'), join(s.dir, 'certs', 'BOOTSTRAP-batch2.crt')]).code, 0);

    const dev = await newDevice(s.dir);
    serialOf(enrolJson(s, 'BOOTSTRAP', dev.csr));
    serialOf(enrolJson(s, 'BOOTSTRAP-batch2', (await newDevice(s.dir)).csr));

    const r = cli(['cert', 'revoke', '--cert', 'certs/BOOTSTRAP.crt', '--operator', 'alice', '--reason', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `revoked ${fileSerial(join(s.dir, 'certs', 'BOOTSTRAP.crt'))}\n`);

    // The old credential: the connection is closed right after the handshake, on both ports.
    const refused = enrolJson(s, 'BOOTSTRAP', (await newDevice(s.dir)).csr);
    assert.equal(refused.status, 0, `still answered: ${refused.status} ${refused.body.toString()}`);
    assert.notEqual(refused.code, 0);
    const m = openssl(['s_client', '-connect', `127.0.0.1:${s.mport}`, '-cert', join(s.dir, 'certs', 'BOOTSTRAP.crt'), '-key', join(s.dir, 'certs', 'BOOTSTRAP.key'), '-CAfile', join(s.dir, 'certs', 'CA.crt')], { input: '' });
    assert.doesNotMatch(m.stdout + m.stderr, /HTTP|OK serial/);
    await logged(s, /mtls: connection from 127\.0\.0\.1:\d+ refused: CERT_REVOKED/);
    // The new one still enrols, and the device it enrolled says which credential did.
    const d2 = await newDevice(s.dir);
    serialOf(enrolJson(s, 'BOOTSTRAP-batch2', d2.csr));
    const list = liteboot(['device', 'list', '--json'], { cwd: s.dir });
    const rows = JSON.parse(list.stdout) as { id: string; enrolledBy: string }[];
    const batch2 = fileSerial(join(s.dir, 'certs', 'BOOTSTRAP-batch2.crt'));
    assert.equal(rows.find((x) => x.id === d2.id)?.enrolledBy, `bootstrap:${batch2}`);
    assert.equal(rows.find((x) => x.id === dev.id)?.enrolledBy, `bootstrap:${fileSerial(join(s.dir, 'certs', 'BOOTSTRAP.crt'))}`);
  });

  it('an operator revokes another operator by serial; a bootstrap or device may not revoke credentials', async () => {
    const made = liteboot(['operator', 'create', 'bob'], { cwd: s.dir });
    assert.equal(made.code, 0, made.stderr);
    const bob = fileSerial(join(s.dir, 'certs', 'OPERATOR-bob.crt'));
    // bob works (and is recorded the first time he connects) ...
    serialOf(enrolJson(s, 'OPERATOR-bob', (await newDevice(s.dir)).csr));
    // ... a device cannot revoke him ...
    const dev = await newDevice(s.dir);
    const devSerial = serialOf(enrolJson(s, 'OPERATOR-bob', dev.csr));
    const crt = curl(s, identity(s.dir, 'OPERATOR-bob'), `/api/v1/cc/${devSerial}`, ['-H', 'Content-Type: application/json']);
    writeFileSync(join(s.dir, 'certs', `${dev.id}.crt`), JSON.parse(crt.body.toString()).Cert ?? crt.body);
    const asDevice = curl(s, { cert: join(s.dir, 'certs', `${dev.id}.crt`), key: dev.keyFile }, '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${bob}}`]);
    assert.equal(asDevice.status, 403);
    assert.equal(asDevice.body.toString(), '{"error":"only an operator may revoke a bootstrap or operator credential"}\n');
    // ... alice can.
    const r = cli(['cert', 'revoke', bob, '--operator', 'alice']);
    assert.equal(r.code, 0, r.stderr);
    const after = enrolJson(s, 'OPERATOR-bob', (await newDevice(s.dir)).csr);
    assert.equal(after.status, 0);
    // alice is unaffected.
    serialOf(enrolJson(s, 'OPERATOR-alice', (await newDevice(s.dir)).csr));
  });

  it('revocations of credentials survive a restart', async () => {
    // Covered by the store: a restarted server loads revoked credentials before serving.
    await s.stop();
    const { spawnServer } = await import('../helpers/server.js');
    s = await spawnServer(s.dir, s.cleanup);
    const refused = enrolJson(s, 'BOOTSTRAP', (await newDevice(s.dir)).csr);
    assert.equal(refused.status, 0);
    serialOf(enrolJson(s, 'BOOTSTRAP-batch2', (await newDevice(s.dir)).csr));
  });
});
