/**
 * EST (RFC 7030, RFC 8951) on the REST port, with curl and openssl as the EST client: the same
 * mutual TLS and the same enrolment rules as /api/v1/cr and /kur.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl, freePort, identity, startServer, type CurlResult, type Identity, type TestServer } from '../helpers/server.js';
import { liteboot, openssl, run } from '../helpers/run.js';

const EST = '/.well-known/est';

const header = (r: CurlResult, name: string) => new RegExp(`^${name}: *(.*?)\\r?$`, 'im').exec(r.headers)?.[1];

/** `openssl req` as a user would: a new key and a DER CSR for the subject. */
function opensslCsr(dir: string, subject: string, extra: string[] = []): { key: string; der: Buffer } {
  const base = join(dir, `est-${randomUUID()}`);
  const r = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-subj', subject, ...extra, '-outform', 'DER', '-out', `${base}.csr`]);
  assert.equal(r.code, 0, r.stderr);
  return { key: `${base}.key`, der: readFileSync(`${base}.csr`) };
}

/** `openssl req ... -outform DER | base64` (coreutils wraps at 76 columns; `-w0` does not). */
function base64File(dir: string, der: Buffer, wrap = true): string {
  const f = join(dir, `est-${randomUUID()}.b64`);
  const r = run('base64', wrap ? [] : ['-w0'], { input: der });
  assert.equal(r.code, 0, r.stderr);
  writeFileSync(f, r.out);
  return f;
}

/** POST a body file; `contentType` null sends none (curl's `-H 'Content-Type:'`). */
function post(s: TestServer, who: Identity | undefined, op: string, body: string, contentType: string | null = 'application/pkcs10', extra: string[] = []): CurlResult {
  return curl(s, who, `${EST}/${op}`, ['-H', `Content-Type:${contentType === null ? '' : ` ${contentType}`}`, '--data-binary', `@${body}`, ...extra]);
}

/** `base64 -d | openssl pkcs7 -inform DER -print_certs`: the PEM certificates of an EST answer. */
function pkcs7Certs(body: Buffer): string[] {
  const r = run('sh', ['-c', 'base64 -d | openssl pkcs7 -inform DER -print_certs'], { input: body });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
}

function serialOf(pemFile: string): bigint {
  return BigInt('0x' + openssl(['x509', '-in', pemFile, '-noout', '-serial']).stdout.trim().split('=')[1]);
}

/** A certificate an EST answer carried, written to a file, checked by openssl verify. */
function issued(s: TestServer, r: CurlResult): { file: string; serial: bigint } {
  assert.equal(r.status, 200, r.body.toString());
  assert.equal(header(r, 'content-type'), 'application/pkcs7-mime; smime-type=certs-only');
  const certs = pkcs7Certs(r.body);
  assert.equal(certs.length, 1);
  const file = join(s.dir, `est-${randomUUID()}.crt`);
  writeFileSync(file, certs[0]!);
  const v = openssl(['verify', '-CAfile', join(s.dir, 'certs', 'CA.crt'), file]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  return { file, serial: serialOf(file) };
}

const pubkeyOfCert = (file: string) => openssl(['x509', '-in', file, '-noout', '-pubkey']).stdout;
const pubkeyOfKey = (file: string) => openssl(['pkey', '-in', file, '-pubout']).stdout;

/** Resolves once the server's stderr matches: log lines arrive as events, after the answer. */
function logged(s: TestServer, re: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = () => {
      if (!re.test(s.stderr())) return;
      s.child.stderr!.off('data', onData);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      s.child.stderr!.off('data', onData);
      reject(new Error(`the server never logged ${re}; it logged:\n${s.stderr()}`));
    }, 30_000);
    s.child.stderr!.on('data', onData);
    onData();
  });
}

/** An EST error: the status, a short text/plain reason. */
function refused(r: CurlResult, status: number, reason?: RegExp, what = ''): void {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.body.toString()}`);
  assert.match(header(r, 'content-type') ?? '', /^text\/plain/);
  const text = r.body.toString();
  assert.ok(text.length > 0 && text.length < 300 && text.endsWith('\n') && !text.startsWith('{'), text);
  if (reason) assert.match(text, reason);
}

interface Device {
  id: string;
  who: Identity;
  serial: bigint;
  /** The serial of the certificate simplereenroll gave it. */
  reenrolled?: bigint;
}

describe('EST on the REST port', () => {
  let s: TestServer;
  let bootstrap: Identity;
  let operator: Identity;
  let device: Device;
  before(async () => {
    s = await startServer({ args: ['--http-port', String(await freePort())] });
    bootstrap = identity(s.dir, 'BOOTSTRAP');
    operator = identity(s.dir, 'OPERATOR-alice');
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('simpleenroll: a bootstrap enrolment with an openssl CSR gives a certificate openssl verifies, for the CSR\'s key and subject', () => {
    const id = randomUUID();
    const csr = opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${id}`);
    // Line breaks and a Content-Transfer-Encoding header (RFC 7030's form) are accepted.
    const r = post(s, bootstrap, 'simpleenroll', base64File(s.dir, csr.der), 'application/pkcs10', ['-H', 'Content-Transfer-Encoding: base64']);
    const cert = issued(s, r);
    assert.equal(pubkeyOfCert(cert.file), pubkeyOfKey(csr.key), 'the certificate is for the CSR\'s key');
    assert.equal(openssl(['x509', '-in', cert.file, '-noout', '-subject']).stdout.trim(), `subject=O = Test Vendor, OU = Signing, CN = ${id}`);
    device = { id, who: { cert: cert.file, key: csr.key }, serial: cert.serial };
    // ... and so is one base64 line, with no header.
    const other = opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${randomUUID()}`);
    assert.equal(pubkeyOfCert(issued(s, post(s, bootstrap, 'simpleenroll', base64File(s.dir, other.der, false))).file), pubkeyOfKey(other.key));
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${cert.serial}`).body.toString(), '{"Status":1}\n');
  });

  it('cacerts: certs/CA.crt as a certs-only PKCS#7, the bytes of openssl crl2pkcs7, for any certificate the CA accepts', () => {
    const ca = join(s.dir, 'certs', 'CA.crt');
    const expected = openssl(['crl2pkcs7', '-nocrl', '-certfile', ca, '-outform', 'DER']).out;
    for (const who of [bootstrap, operator, device.who]) {
      const r = curl(s, who, `${EST}/cacerts`);
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(header(r, 'content-type'), 'application/pkcs7-mime');
      assert.deepEqual(pkcs7Certs(r.body), [readFileSync(ca, 'utf8')]);
      assert.equal(run('base64', ['-d'], { input: r.body }).out.toString('hex'), expected.toString('hex'));
    }
  });

  it('simplereenroll: the device\'s certificate and a new key for the same subject; the old certificate stays valid', () => {
    const csr = opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${device.id}`);
    const cert = issued(s, post(s, device.who, 'simplereenroll', base64File(s.dir, csr.der)));
    assert.equal(pubkeyOfCert(cert.file), pubkeyOfKey(csr.key));
    assert.notEqual(pubkeyOfCert(cert.file), pubkeyOfCert(device.who.cert));
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${device.serial}`).body.toString(), '{"Status":1}\n', 'the old certificate is still valid');
    assert.equal(JSON.parse(curl(s, bootstrap, `/api/v1/ds/${device.id}`).body.toString()).Serials.length, 2);
    device.reenrolled = cert.serial;
    // The new certificate works as the device's too.
    issued(s, post(s, { cert: cert.file, key: csr.key }, 'simplereenroll', base64File(s.dir, opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${device.id}`).der)));
  });

  it('simplereenroll refuses a changed subject or a SAN (RFC 7030 §4.2.2), and any certificate but a device\'s', () => {
    for (const subject of [`/O=Test Vendor/OU=Other/CN=${device.id}`, `/O=Test Vendor/CN=${device.id}`, `/O=Test Vendor/OU=Signing/CN=${randomUUID()}`, `/O=Test Vendor/CN=${device.id}/OU=Signing`]) {
      refused(post(s, device.who, 'simplereenroll', base64File(s.dir, opensslCsr(s.dir, subject).der)), 403, /subject .* is not that of your certificate/);
    }
    const san = opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${device.id}`, ['-addext', 'subjectAltName=DNS:device.example']);
    refused(post(s, device.who, 'simplereenroll', base64File(s.dir, san.der)), 403, /subjectAltName/);
    const same = opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${device.id}`);
    refused(post(s, bootstrap, 'simplereenroll', base64File(s.dir, same.der)), 403, /bootstrap certificate may not/);
    refused(post(s, operator, 'simplereenroll', base64File(s.dir, same.der)), 403, /operator certificate may not/);
    // And a device may not simpleenroll (as with /cr).
    refused(post(s, device.who, 'simpleenroll', base64File(s.dir, same.der)), 403, /device certificate may not/);
  });

  it('simpleenroll of an enrolled id with another key is 409 (the identity binding), and changes nothing; its own key still re-enrols', async () => {
    const attacker = opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${device.id}`);
    const before = curl(s, bootstrap, `/api/v1/ds/${device.id}`).body.toString();
    refused(post(s, bootstrap, 'simpleenroll', base64File(s.dir, attacker.der)), 409, /^device already enrolled with another key\n$/);
    assert.equal(curl(s, bootstrap, `/api/v1/ds/${device.id}`).body.toString(), before);
    await logged(s, new RegExp(`WARN refused a bootstrap enrolment \\(est:bootstrap:\\d+\\) for ${device.id}`));
    // A device that lost its storage re-enrols with the key it still has (the Zephyr client derives it).
    const lost = run('openssl', ['req', '-new', '-key', device.who.key, '-subj', `/O=Test Vendor/OU=Signing/CN=${device.id}`, '-outform', 'DER']);
    assert.equal(lost.code, 0, lost.stderr);
    issued(s, post(s, bootstrap, 'simpleenroll', base64File(s.dir, lost.out)));
    // An operator may give an enrolled id a new key, as with /cr.
    issued(s, post(s, operator, 'simpleenroll', base64File(s.dir, attacker.der)));
  });

  it('csrattrs: id-ecPublicKey with the curves the policy takes, and the ECDSA signature algorithms', () => {
    const r = curl(s, bootstrap, `${EST}/csrattrs`);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(header(r, 'content-type'), 'application/csrattrs');
    const p = run('sh', ['-c', 'base64 -d | openssl asn1parse -inform DER'], { input: r.body });
    assert.equal(p.code, 0, p.stderr);
    const lines = p.stdout.trim().split('\n').map((l) => l.replace(/^\s*\d+:/, '').replace(/hl=\d l=\s*\d+ /, '').replace(/\s+/g, ' ').trim());
    assert.deepEqual(lines, [
      'd=0 cons: SEQUENCE',
      'd=1 cons: SEQUENCE',
      'd=2 prim: OBJECT :id-ecPublicKey',
      'd=2 cons: SET',
      'd=3 prim: OBJECT :secp384r1',
      'd=3 prim: OBJECT :prime256v1',
      'd=1 prim: OBJECT :ecdsa-with-SHA256',
      'd=1 prim: OBJECT :ecdsa-with-SHA384',
    ]);
  });

  it('bad requests: 415 for a wrong Content-Type, 400 for bad base64 or a bad CSR, 405 with Allow; a text/plain reason, never a 500', async () => {
    const good = opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${randomUUID()}`);
    const goodB64 = base64File(s.dir, good.der);
    const text = (t: string) => {
      const f = join(s.dir, `est-${randomUUID()}.txt`);
      writeFileSync(f, t);
      return f;
    };
    const corrupt = Buffer.from(good.der);
    corrupt[corrupt.length - 5]! ^= 0x01; // in the signature: proof of possession fails
    const cases: [string, CurlResult, number, RegExp][] = [
      ['JSON Content-Type', post(s, bootstrap, 'simpleenroll', goodB64, 'application/json'), 415, /application\/pkcs10/],
      ['no Content-Type', post(s, bootstrap, 'simpleenroll', goodB64, null), 415, /untyped/],
      ['CBOR Content-Type on reenroll', post(s, device.who, 'simplereenroll', goodB64, 'application/cbor'), 415, /application\/pkcs10/],
      ['not base64', post(s, bootstrap, 'simpleenroll', text('this is not base64!\n')), 400, /base64/],
      ['base64 cut short', post(s, bootstrap, 'simpleenroll', text(good.der.toString('base64').slice(0, -1))), 400, /base64/],
      ['empty body', post(s, bootstrap, 'simpleenroll', text('')), 400, /base64/],
      ['base64 of garbage', post(s, bootstrap, 'simpleenroll', text(Buffer.from('garbage').toString('base64'))), 400, /CSR refused/],
      ['a CSR whose signature fails', post(s, bootstrap, 'simpleenroll', base64File(s.dir, corrupt)), 400, /proof of possession/],
      ['a CN that is not a UUID', post(s, bootstrap, 'simpleenroll', base64File(s.dir, opensslCsr(s.dir, '/O=Test Vendor/CN=not-a-uuid').der)), 400, /not a UUID/],
      ['the bootstrap OU', post(s, bootstrap, 'simpleenroll', base64File(s.dir, opensslCsr(s.dir, `/OU=LinaroCA Bootstrap Cert/CN=${randomUUID()}`).der)), 400, /may not claim the OU/],
      ['GET simpleenroll', curl(s, bootstrap, `${EST}/simpleenroll`), 405, /method not allowed/],
      ['POST cacerts', post(s, bootstrap, 'cacerts', goodB64), 405, /method not allowed/],
      ['PUT csrattrs', curl(s, bootstrap, `${EST}/csrattrs`, ['-X', 'PUT']), 405, /method not allowed/],
    ];
    for (const [what, r, status, reason] of cases) {
      assert.ok(r.status < 500, what);
      refused(r, status, reason, what);
    }
    // The DER itself, not base64.
    refused(post(s, bootstrap, 'simpleenroll', text(good.der.toString('latin1'))), 400, /base64/);
    assert.equal(header(cases.find((c) => c[0] === 'GET simpleenroll')![1], 'allow'), 'POST');
    assert.equal(header(cases.find((c) => c[0] === 'POST cacerts')![1], 'allow'), 'GET');
    assert.doesNotMatch(s.stderr(), /internal server error| 500 /);
  });

  it('no client certificate, or one the CA did not sign, is refused in TLS', () => {
    const foreign = join(s.dir, 'foreign');
    const g = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${foreign}.key`, '-subj', '/OU=LinaroCA Bootstrap Cert/CN=bootstrap-register-1', '-days', '1', '-out', `${foreign}.crt`]);
    assert.equal(g.code, 0, g.stderr);
    const csr = base64File(s.dir, opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${randomUUID()}`).der);
    for (const who of [undefined, { cert: `${foreign}.crt`, key: `${foreign}.key` }]) {
      for (const r of [post(s, who, 'simpleenroll', csr), curl(s, who, `${EST}/cacerts`)]) {
        assert.equal(r.status, 0, `answered HTTP ${r.status}`);
        assert.notEqual(r.code, 0);
      }
    }
  });

  it('records EST issuance: device list shows est:<credential>; the certificate is revocable and reaches the CRL', () => {
    const bootstrapSerial = serialOf(bootstrap.cert);
    const list = liteboot(['device', 'list', '--json'], { cwd: s.dir });
    assert.equal(list.code, 0, list.stderr);
    const mine = (JSON.parse(list.stdout) as { id: string; enrolledBy: string; certificates: number }[]).find((d) => d.id === device.id);
    assert.equal(mine?.enrolledBy, `est:bootstrap:${bootstrapSerial}`);
    assert.ok(mine.certificates >= 4, `${mine.certificates} certificates`);
    const krr = curl(s, operator, '/api/v1/krr', ['-H', 'Content-Type: application/json', '-d', `{"Serial":${device.serial},"Reason":1}`]);
    assert.equal(krr.status, 200, krr.body.toString());
    const crl = run('curl', ['-sS', '--fail', `http://127.0.0.1:${s.httpPort}/crl`]);
    assert.equal(crl.code, 0, crl.stderr);
    const text = openssl(['crl', '-inform', 'DER', '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-noout', '-text'], { input: crl.out });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`Serial Number: ${device.serial.toString(16).toUpperCase().padStart(2, '0')}\\n\\s+Revocation Date`));
    // The revoked certificate can no longer re-enrol.
    assert.equal(post(s, device.who, 'simplereenroll', base64File(s.dir, opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${device.id}`).der)).status, 0);
  });

  it('liteboot new-device --format est enrols over EST and checks the certificate', () => {
    const r = liteboot(['new-device', 'localhost', '--port', String(s.port), '--format', 'est'], { cwd: s.dir });
    assert.equal(r.code, 0, r.stderr);
    const [, uuid, serial] = /enrolled ([0-9a-f-]{36}) \(serial (\d+)\)/.exec(r.stdout)!;
    const crt = join(s.dir, 'certs', `${uuid}.crt`);
    const v = openssl(['verify', '-CAfile', join(s.dir, 'certs', 'CA.crt'), crt]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(pubkeyOfCert(crt), pubkeyOfKey(join(s.dir, 'certs', `${uuid}.key`)));
    assert.equal(serialOf(crt).toString(), serial);
    const list = JSON.parse(liteboot(['device', 'list', '--json'], { cwd: s.dir }).stdout) as { id: string; enrolledBy: string }[];
    assert.equal(list.find((d) => d.id === uuid)?.enrolledBy, `est:bootstrap:${serialOf(identity(s.dir, 'BOOTSTRAP').cert)}`);
  });

  it('CADB.db records every EST certificate with est: and the credential that asked', async () => {
    assert.equal(await s.stop(), 0);
    const db = run('sqlite3', [join(s.dir, 'CADB.db'), `SELECT DISTINCT issued_by FROM certs WHERE id = '${device.id}' ORDER BY issued_by`]);
    assert.equal(db.code, 0, db.stderr);
    assert.deepEqual(db.stdout.trim().split('\n'), [`est:bootstrap:${serialOf(bootstrap.cert)}`, `est:device:${device.reenrolled}`, `est:device:${device.serial}`, 'est:operator:alice'].sort());
  });
});

describe('EST with the allowlist on and a cloud provider', () => {
  it('refuses an unexpected device (403 device not expected), lets an operator enrol it, and registers it with the provider', async () => {
    const hooks: { deviceId: string }[] = [];
    let hooked: (() => void) | undefined;
    const receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hooks.push(JSON.parse(body) as { deviceId: string });
        res.writeHead(204).end();
        hooked?.();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const port = (receiver.address() as { port: number }).port;
    const s = await startServer({ toml: `enrolment = "allowlist"\n[cloud]\nprovider = "webhook"\nurl = "http://127.0.0.1:${port}/hook"\n`, env: { LITEBOOT_WEBHOOK_SECRET: 'est-test' } });
    try {
      const id = randomUUID();
      const csr = base64File(s.dir, opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${id}`).der);
      refused(post(s, identity(s.dir, 'BOOTSTRAP'), 'simpleenroll', csr), 403, /^device not expected\n$/);
      // new-device says why, from the text/plain reason, and exits 1.
      const nd = liteboot(['new-device', 'localhost', '--port', String(s.port), '--format', 'est'], { cwd: s.dir });
      assert.equal(nd.code, 1, nd.stdout);
      assert.match(nd.stderr, /the server refused \(HTTP 403\): device not expected/);
      const registered = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the provider never heard of ${id}: ${JSON.stringify(hooks)}`)), 30_000);
        hooked = () => {
          if (!hooks.some((h) => h.deviceId === id)) return;
          clearTimeout(timer);
          resolve();
        };
        hooked();
      });
      issued(s, post(s, identity(s.dir, 'OPERATOR-alice'), 'simpleenroll', csr));
      await registered;
      // ... and once allowed, the bootstrap credential may enrol another id.
      const next = randomUUID();
      const allow = liteboot(['device', 'allow', next, '--operator', 'alice', '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir });
      assert.equal(allow.code, 0, allow.stderr);
      issued(s, post(s, identity(s.dir, 'BOOTSTRAP'), 'simpleenroll', base64File(s.dir, opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${next}`).der)));
    } finally {
      await s.stop();
      receiver.close();
      s.cleanup();
    }
  });
});
