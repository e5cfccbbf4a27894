/**
 * Several servers on one PostgreSQL (issue 14): two real `liteboot server start` processes share
 * a throwaway database and one CA; devices enrol on either, and what one server decides (a
 * serial, a revocation, a registration, a key binding) holds on the other.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { toPem } from '../../src/asn1/pem.js';
import { RESYNC_MS } from '../../src/ca/authority.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { makeOperator } from '../../src/ca/setup.js';
import { leaseMs } from '../../src/cloud/registrar.js';
import type { CloudConfig } from '../../src/config.js';
import { openStoreAt } from '../../src/store/open.js';
import { REVOCATION_SEQ_KEY } from '../../src/store/pg-schema.js';
import { azureToml, CONNECTION, fakeRegistry } from '../helpers/fake-registry.js';
import { pgUnavailable, startPostgres, type PgCluster } from '../helpers/pg.js';
import { openssl } from '../helpers/run.js';
import { cborCsrBody, httpsRequest, identity, newDevice, tlsFiles, type Identity, type TestServer } from '../helpers/server.js';
import { checkVerdict, startPair, type Pair } from '../helpers/two-servers.js';

const skip = pgUnavailable();

interface Enrolled {
  id: string;
  serial: bigint;
  der: Buffer;
  /** The device's certificate and key as files, for TLS clients. */
  who: Identity;
}

/** The serial of a DER certificate, read by openssl. */
function serialOf(der: Buffer): bigint {
  return BigInt('0x' + openssl(['x509', '-noout', '-serial'], { input: toPem('CERTIFICATE', der) }).stdout.trim().split('=')[1]);
}

/** POST /cr (CBOR) with the bootstrap credential; the status and, on 200, the certificate. */
async function enrolOn(s: TestServer, root: string, id: string = randomUUID(), agent?: Agent): Promise<{ status: number; body: Buffer; device: Awaited<ReturnType<typeof newDevice>> }> {
  const device = await newDevice(s.dir, undefined, id);
  const r = await httpsRequest(s, tlsFiles(root, identity(root, 'BOOTSTRAP')), 'POST', '/api/v1/cr', { headers: { 'Content-Type': 'application/cbor' }, body: cborCsrBody(device.csr), agent });
  return { status: r.status, body: r.body, device };
}

async function enrol(s: TestServer, root: string, id: string = randomUUID()): Promise<Enrolled> {
  const r = await enrolOn(s, root, id);
  assert.equal(r.status, 200, r.body.toString());
  const der = r.body.subarray(7);
  const cert = join(s.dir, `${r.device.id}.crt`);
  writeFileSync(cert, toPem('CERTIFICATE', der));
  return { id: r.device.id, serial: serialOf(der), der, who: { cert, key: r.device.keyFile } };
}

/** `cs` as JSON: the body, e.g. `{"Status":1}`. */
async function cs(s: TestServer, root: string, serial: bigint): Promise<string> {
  const r = await httpsRequest(s, tlsFiles(root, identity(root, 'OPERATOR-alice')), 'GET', `/api/v1/cs/${serial}`, { headers: { 'Content-Type': 'application/json' } });
  return `${r.status} ${r.body.toString().trim()}`;
}

async function krr(s: TestServer, root: string, serial: bigint, reason = 1): Promise<void> {
  const r = await httpsRequest(s, tlsFiles(root, identity(root, 'OPERATOR-alice')), 'POST', '/api/v1/krr', { headers: { 'Content-Type': 'application/json' }, body: Buffer.from(`{"Serial":${serial},"Reason":${reason}}`) });
  assert.equal(r.status, 200, r.body.toString());
}

/** Asks until `f` says yes, as fast as the peer answers; rejects after `ms`. For state that logs nothing on this side. */
async function until(what: string, f: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** openssl ocsp against a server's public listener: `good`, `revoked` or what openssl said. */
function ocspStatus(s: TestServer, root: string, certFile: string): string {
  const ca = join(root, 'certs', 'CA.crt');
  const r = openssl(['ocsp', '-issuer', ca, '-CAfile', ca, '-cert', certFile, '-url', `http://127.0.0.1:${s.httpPort}/ocsp`, '-no_nonce']);
  const m = /: (good|revoked|unknown)\n/.exec(r.stdout);
  assert.match(r.stdout + r.stderr, /Response verify OK/);
  return m?.[1] ?? r.stdout + r.stderr;
}

/** A server's CRL from its public listener, verified by openssl: its number and its text. */
async function crlOf(s: TestServer, root: string): Promise<{ number: bigint; text: string }> {
  const r = await fetch(`http://127.0.0.1:${s.httpPort}/crl`);
  const file = join(s.dir, `crl-${randomUUID()}.der`);
  writeFileSync(file, Buffer.from(await r.arrayBuffer()));
  const v = openssl(['crl', '-inform', 'DER', '-in', file, '-CAfile', join(root, 'certs', 'CA.crt'), '-noout', '-text']);
  assert.match(v.stdout + v.stderr, /verify OK/);
  return { number: BigInt('0x' + /X509v3 CRL Number: \n\s+([0-9A-F]+)/i.exec(v.stdout)![1]), text: v.stdout };
}

const hex = (serial: bigint) => serial.toString(16).toUpperCase().padStart(16, '0');

/** A request through the REST API with a certificate that should be refused: 403, or the connection closed after the handshake. */
async function apiRefuses(s: TestServer, root: string, who: Identity): Promise<string> {
  try {
    const r = await httpsRequest(s, tlsFiles(root, who), 'GET', `/api/v1/ccs`, { headers: { 'Content-Type': 'application/json' } });
    return String(r.status);
  } catch (e) {
    return `closed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}

describe('two servers on one PostgreSQL', { skip }, () => {
  let cluster: PgCluster;
  let pair: Pair;
  let registry: Awaited<ReturnType<typeof fakeRegistry>>;
  let db: string;

  before(async () => {
    cluster = await startPostgres();
    db = await cluster.createDatabase();
    pair = await startPair({
      db,
      env: { LITEBOOT_AZURE_CONNECTION_STRING: CONNECTION },
      prepare: async (root) => {
        // A second operator, to be revoked on one server and refused by the other.
        await makeOperator({ certs: new CertsDir(join(root, 'certs')), name: 'bob', now: new Date(Date.now() - 60_000) });
        registry = await fakeRegistry(root, () => '200');
      },
      // A generous timeout: the fake service checks each signature with openssl on a busy machine,
      // and a timed-out attempt is rightly tried again (which this test would count as twice).
      toml: () => azureToml(registry.port).replace('timeout = 2\n', 'timeout = 20\n'),
    });
  });
  after(async () => {
    await pair?.stop();
    await registry?.close();
    await cluster?.stop();
  });

  it('concurrent enrolments on A and B get distinct serials, each known to the other server', async () => {
    const results = await Promise.all(Array.from({ length: 48 }, (_, i) => enrolOn(i % 2 ? pair.b : pair.a, pair.root)));
    assert.deepEqual(results.map((r) => r.status), results.map(() => 200));
    const serials = results.map((r) => serialOf(r.body.subarray(7)));
    assert.equal(new Set(serials).size, serials.length, 'no serial twice');
    for (const s of serials) assert.ok(s > 0n && s < 1n << 63n);
    for (const [i, s] of serials.entries()) assert.equal(await cs(i % 2 ? pair.a : pair.b, pair.root, s), '200 {"Status":1}');
  });

  it('a device certificate revoked on A is refused by B\'s check listener, OCSP and CRL within 1 s, and by its API', async (t) => {
    const d = await enrol(pair.a, pair.root);
    assert.match(await checkVerdict(pair.b, d.who, pair.root), new RegExp(`^OK serial=${d.serial} `));
    assert.equal(ocspStatus(pair.b, pair.root, d.who.cert), 'good');
    const crl0 = await crlOf(pair.b, pair.root);
    await krr(pair.a, pair.root, d.serial);
    const t0 = Date.now(); // A answered: the revocation is durable
    await until("B's check listener to refuse", async () => (await checkVerdict(pair.b, d.who, pair.root)) === 'REFUSED certificate revoked');
    const mtlsMs = Date.now() - t0;
    await until("B's OCSP to say revoked", () => ocspStatus(pair.b, pair.root, d.who.cert) === 'revoked');
    const ocspMs = Date.now() - t0;
    let crl = crl0;
    await until("B's CRL to list it", async () => (crl = await crlOf(pair.b, pair.root)).text.includes(`Serial Number: ${hex(d.serial)}`));
    const crlMs = Date.now() - t0;
    t.diagnostic(`after A's krr answered: B's check listener refused in ${mtlsMs} ms, OCSP revoked in ${ocspMs} ms, CRL listed in ${crlMs} ms`);
    assert.ok(mtlsMs < 1000, `B's check listener refused it ${mtlsMs} ms after A answered`);
    assert.ok(ocspMs < 1000, `B's OCSP said revoked ${ocspMs} ms after A answered`);
    assert.ok(crlMs < 1000, `B's CRL listed it ${crlMs} ms after A answered`);
    assert.ok(crl.number > crl0.number, `B's CRL number ${crl.number} after ${crl0.number}`);
    const crlA = await crlOf(pair.a, pair.root);
    assert.notEqual(crlA.number, crl.number, 'one counter: two servers never publish one number');
    assert.ok(crlA.text.includes(`Serial Number: ${hex(d.serial)}`));
    assert.match(await apiRefuses(pair.b, pair.root, d.who), /^(403|closed)/);
    assert.equal(await cs(pair.b, pair.root, d.serial), '200 {"Status":0}');
  });

  it('an operator credential revoked on A is refused by B\'s API and check listener', async () => {
    const bob = identity(pair.root, 'OPERATOR-bob');
    assert.equal(await apiRefuses(pair.b, pair.root, bob), '200');
    const serial = BigInt('0x' + openssl(['x509', '-noout', '-serial', '-in', bob.cert]).stdout.trim().split('=')[1]);
    await krr(pair.a, pair.root, serial, 4);
    const t0 = Date.now();
    // The API reads the credential's record: refused at once.
    assert.match(await apiRefuses(pair.b, pair.root, bob), /^(403|closed)/);
    await until("B's check listener to refuse bob", async () => (await checkVerdict(pair.b, bob, pair.root)) === 'REFUSED certificate revoked');
    assert.ok(Date.now() - t0 < 1000, `B's check listener refused bob ${Date.now() - t0} ms after A answered`);
  });

  it('each device is registered with the cloud exactly once, whichever server issued it', async () => {
    const before = registry.seen.length;
    const devices = await Promise.all(Array.from({ length: 20 }, (_, i) => enrol(i % 2 ? pair.b : pair.a, pair.root)));
    const ids = new Set(devices.map((d) => d.id));
    await until('every device registered', () => [...ids].every((id) => registry.seen.some((x) => x.deviceId === id)), 60_000);
    // Both registrars poll every 0.2 s: a device claimed twice would be sent twice at once. One
    // more device registered later shows both went on polling past these.
    const late = await enrol(pair.b, pair.root);
    await until('the late device registered', () => registry.seen.some((x) => x.deviceId === late.id), 60_000);
    const mine = registry.seen.slice(before).filter((x) => ids.has(x.deviceId));
    assert.deepEqual(mine.map((x) => x.problems).filter((p) => p.length), [], 'every request well-formed and signed');
    const counts = new Map<string, number>();
    for (const x of mine) counts.set(x.deviceId, (counts.get(x.deviceId) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n !== 1).map(([id]) => id);
    const said = (id: string) => [pair.a, pair.b].map((s, i) => s.stderr().split('\n').filter((l) => l.includes(id)).map((l) => `${'AB'[i]}: ${l}`).join('\n')).join('\n');
    assert.deepEqual(twice, [], `no device sent twice:\n${twice.map(said).join('\n')}`);
    const store = await openStoreAt(db, { readOnly: true });
    try {
      for (const id of ids) {
        const reg = await store.registration(id);
        assert.equal(reg?.status, 'registered');
        assert.equal(reg.attempts, 1);
      }
    } finally {
      await store.close();
    }
    const lines = (s: TestServer) => [...s.stderr().matchAll(/cloud: registered ([0-9a-f-]{36}) /g)].map((m) => m[1]!).filter((id) => ids.has(id));
    assert.equal(lines(pair.a).length + lines(pair.b).length, ids.size, 'one "registered" line per device across both servers');
  });

  it('one UUID enrolled with two keys at once, one on A and one on B: exactly one key is bound', async () => {
    const ids = Array.from({ length: 16 }, () => randomUUID());
    const results = await Promise.all(ids.flatMap((id) => [enrolOn(pair.a, pair.root, id), enrolOn(pair.b, pair.root, id)]));
    for (const [i, id] of ids.entries()) {
      const statuses = [results[2 * i]!.status, results[2 * i + 1]!.status].sort();
      assert.deepEqual(statuses, [200, 409], `${id}: one enrolment, one refusal (${statuses})`);
      const ds = await httpsRequest(pair.a, tlsFiles(pair.root, identity(pair.root, 'OPERATOR-alice')), 'GET', `/api/v1/ds/${id}`, { headers: { 'Content-Type': 'application/json' } });
      assert.equal(ds.status, 200);
      const serials = (/"Serials":\[([^\]]*)\]/.exec(ds.body.toString())?.[1] ?? '').split(',').filter(Boolean);
      assert.equal(serials.length, 1, `${id}: ${ds.body.toString()}`);
    }
  });

  it('a revocation whose notification was lost is enforced by both servers at the next resync', async (t) => {
    const d = await enrol(pair.a, pair.root);
    assert.match(await checkVerdict(pair.b, d.who, pair.root), /^OK /);
    // Revoked as the store revokes (the feed's counter and the row in one transaction), but with no NOTIFY.
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    try {
      await c.query('BEGIN');
      const seq = (await c.query<{ value: string }>(`UPDATE settings SET value = (value::bigint + 1)::text WHERE key = $1 RETURNING value`, [REVOCATION_SEQ_KEY])).rows[0]!.value;
      await c.query('UPDATE certs SET valid = false, revoked_at = $2, revoke_reason = 1, revoked_seq = $3 WHERE serial = $1', [d.serial.toString(), String(Date.now()), seq]);
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
    const t0 = Date.now();
    await Promise.all(
      [pair.a, pair.b].map((s) => until(`${s === pair.a ? 'A' : 'B'}'s check listener to refuse`, async () => (await checkVerdict(s, d.who, pair.root)) === 'REFUSED certificate revoked', RESYNC_MS * 3)),
    );
    t.diagnostic(`both check listeners refused ${Date.now() - t0} ms after the silent revocation (resync every ${RESYNC_MS} ms)`);
    // The CRL is rebuilt right after the set is updated.
    await until("B's CRL to list it", async () => (await crlOf(pair.b, pair.root)).text.includes(`Serial Number: ${hex(d.serial)}`), 5000);
  });

  it('kill -9 of A under load: every certificate any client received from A is valid on B (cs Status 1)', async () => {
    const received: bigint[] = [];
    let killed = false;
    const client = async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        while (!killed) {
          const r = await enrolOn(pair.a, pair.root, randomUUID(), agent).catch(() => undefined);
          if (!r) return; // the connection died with the server
          if (r.status === 200) received.push(serialOf(r.body.subarray(7)));
        }
      } finally {
        agent.destroy();
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await until('40 certificates received from A', () => received.length >= 40, 60_000);
    pair.a.child.kill('SIGKILL');
    killed = true;
    await pair.a.exited;
    await Promise.all(clients);
    for (const serial of received) assert.equal(await cs(pair.b, pair.root, serial), '200 {"Status":1}', `serial ${serial}`);
    // A comes back on the same database, and knows them too.
    pair.a = await pair.spawn(pair.a.dir);
    assert.equal(await cs(pair.a, pair.root, received.at(-1)!), '200 {"Status":1}');
  });
});

describe('two servers on one PostgreSQL: a registration lease outlives its server', { skip }, () => {
  let cluster: PgCluster;
  let pair: Pair;
  let registry: Awaited<ReturnType<typeof fakeRegistry>>;
  let db: string;
  const target = randomUUID();

  before(async () => {
    cluster = await startPostgres();
    db = await cluster.createDatabase();
    pair = await startPair({
      db,
      env: { LITEBOOT_AZURE_CONNECTION_STRING: CONNECTION },
      // The service never answers the first request for the target: its server is killed meanwhile.
      prepare: async (root) => void (registry = await fakeRegistry(root, (n, id) => (id === target && n === 1 ? 'silent' : '200'))),
      toml: () => azureToml(registry.port).replace('timeout = 2\n', 'timeout = 3\n'),
    });
  });
  after(async () => {
    await pair?.stop();
    await registry?.close();
    await cluster?.stop();
  });

  it('the server holding a device\'s lease is killed: the other registers it once the lease ends, not before', async () => {
    await enrol(pair.a, pair.root, target);
    await until('the first request for the device', () => registry.seen.some((x) => x.deviceId === target), 60_000);
    // Who holds the lease: its owner is host:pid:random.
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    let owner: string | null;
    try {
      owner = (await c.query<{ lease_owner: string | null }>('SELECT lease_owner FROM devices WHERE lower(id) = lower($1)', [target])).rows[0]!.lease_owner;
    } finally {
      await c.end();
    }
    assert.ok(owner, 'the device is leased while a server attempts its registration');
    const pid = Number(owner.split(':').at(-2));
    const [holder, other] = pair.a.child.pid === pid ? [pair.a, pair.b] : [pair.b, pair.a];
    assert.equal(holder.child.pid, pid, `the lease owner ${owner} is one of the servers`);
    holder.child.kill('SIGKILL');
    await holder.exited;
    const first = registry.seen.find((x) => x.deviceId === target)!;
    await other.waitForStderr(new RegExp(`cloud: registered ${target} with `), 0, 60_000);
    const second = registry.seen.filter((x) => x.deviceId === target)[1]!;
    assert.equal(registry.seen.filter((x) => x.deviceId === target).length, 2);
    const lease = leaseMs({ timeoutMs: 3000 } as CloudConfig);
    // The lease was taken (or last renewed) before the first request arrived.
    assert.ok(second.at - first.at >= lease - 1000, `taken over ${second.at - first.at} ms after the first attempt; the lease is ${lease} ms`);
    const store = await openStoreAt(db, { readOnly: true });
    try {
      assert.equal((await store.registration(target))?.status, 'registered');
    } finally {
      await store.close();
    }
  });
});

describe('two servers on one PostgreSQL: the enrolment allowlist', { skip }, () => {
  let cluster: PgCluster;
  let pair: Pair;

  before(async () => {
    cluster = await startPostgres();
    pair = await startPair({ db: await cluster.createDatabase(), toml: 'enrolment = "allowlist"' });
  });
  after(async () => {
    await pair?.stop();
    await cluster?.stop();
  });

  const change = async (s: TestServer, what: 'Allow' | 'Disallow', id: string) => {
    const r = await httpsRequest(s, tlsFiles(pair.root, identity(pair.root, 'OPERATOR-alice')), 'POST', '/api/v1/allowlist', { headers: { 'Content-Type': 'application/json' }, body: Buffer.from(`{"${what}":["${id}"]}`) });
    assert.equal(r.status, 200, r.body.toString());
  };

  it('an id allowed on A enrols on B at once; one disallowed on B is refused by A at once', async () => {
    const x = randomUUID();
    assert.equal((await enrolOn(pair.b, pair.root, x)).status, 403, 'not on the list yet');
    await change(pair.a, 'Allow', x);
    assert.equal((await enrolOn(pair.b, pair.root, x)).status, 200);
    const y = randomUUID();
    await change(pair.b, 'Allow', y);
    await change(pair.b, 'Disallow', y);
    const r = await enrolOn(pair.a, pair.root, y);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /device not expected/);
  });
});
