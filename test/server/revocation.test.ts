/**
 * Revocation reaches the relying parties: the CRL on the public listener and in `crl_file`,
 * and the CRL/OCSP URLs in every device certificate, checked with openssl and curl.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spkiDer } from '../../src/asn1/keys.js';
import { dn } from '../../src/asn1/name.js';
import { toPem } from '../../src/asn1/pem.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { deviceCertificate } from '../../src/ca/profiles.js';
import { bodyFile, cborCsrBody, curl, freePort, identity, newDevice, spawnServer, startServer, type TestServer } from '../helpers/server.js';
import { liteboot, openssl } from '../helpers/run.js';

/** A plain-HTTP GET with curl, as a relying party would fetch the CRL. */
function httpGet(port: number, path: string, headers: string[] = []): { status: number; headers: string; body: Buffer } {
  const out = join(tmpdir(), `liteboot-get-${randomUUID()}`);
  try {
    const r = spawnSync('curl', ['-sS', '-D', '-', '-o', out, ...headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${port}${path}`], { timeout: 30_000 });
    const head = r.stdout.toString('latin1');
    return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), headers: head, body: existsSync(out) ? readFileSync(out) : Buffer.alloc(0) };
  } finally {
    rmSync(out, { force: true });
  }
}

async function enrol(s: TestServer): Promise<{ der: Buffer; serial: bigint; pem: string; raw: Buffer }> {
  const dev = await newDevice(s.dir);
  const r = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', ['-H', 'Content-Type: application/cbor', '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`, '--raw']);
  assert.equal(r.status, 200, r.body.toString());
  const der = r.body.subarray(7);
  const pem = toPem('CERTIFICATE', der);
  const serial = BigInt('0x' + openssl(['x509', '-noout', '-serial'], { input: pem }).stdout.trim().split('=')[1]);
  return { der, serial, pem, raw: Buffer.from(r.headers + r.body.toString('latin1'), 'latin1') };
}

function revoke(s: TestServer, serial: bigint, reason: number): void {
  const r = curl(s, identity(s.dir, 'OPERATOR-alice'), '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${serial},"Reason":${reason}}`]);
  assert.equal(r.status, 200, r.body.toString());
}

describe('the CRL on the public listener', () => {
  let s: TestServer;
  let http: number;
  before(async () => {
    http = await freePort();
    s = await startServer({ args: ['--http-port', String(http)], toml: 'crl_file = "crl.pem"' });
    assert.equal(s.httpPort, http);
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('device certificates name the CRL, the OCSP responder and the CA certificate, and the CBOR answer still fits 1025 bytes with its headers', async () => {
    const c = await enrol(s);
    const text = openssl(['x509', '-noout', '-text'], { input: c.pem }).stdout;
    assert.match(text, new RegExp(`X509v3 CRL Distribution Points: \\n\\s+Full Name:\\n\\s+URI:http://localhost:${http}/crl\\n`));
    assert.match(text, new RegExp(`Authority Information Access: \\n\\s+OCSP - URI:http://localhost:${http}/ocsp\\n\\s+CA Issuers - URI:http://localhost:${http}/ca.crt\\n`));
    assert.equal(openssl(['verify', '-CAfile', join(s.dir, 'certs', 'CA.crt')], { input: c.pem }).code, 0);
    assert.ok(c.raw.length <= 1025, `the /cr answer with headers is ${c.raw.length} bytes`);
  });

  it('GET /ca.crt is the CA certificate, DER', () => {
    const r = httpGet(http, '/ca.crt');
    assert.equal(r.status, 200);
    assert.match(r.headers, /\r\nContent-Type: application\/pkix-cert\r\n/i);
    const ca = openssl(['x509', '-in', join(s.dir, 'certs', 'CA.crt'), '-outform', 'DER']).out;
    assert.ok(r.body.equals(ca));
  });

  it('GET /crl verifies under the CA, lists a revoked serial with its reason after krr, and answers 304 to its ETag', async () => {
    const a = await enrol(s);
    const b = await enrol(s);
    const before = httpGet(http, '/crl');
    assert.equal(before.status, 200);
    assert.match(before.headers, /\r\nContent-Type: application\/pkix-crl\r\n/i);
    writeFileSync(join(s.dir, 'before.crl'), before.body);
    const v0 = openssl(['crl', '-inform', 'DER', '-in', join(s.dir, 'before.crl'), '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-noout', '-text']);
    assert.match(v0.stderr + v0.stdout, /verify OK/);
    const n0 = BigInt('0x' + /X509v3 CRL Number: \n\s+([0-9A-F]+)/i.exec(v0.stdout)![1]);

    revoke(s, a.serial, 1);
    const crl = httpGet(http, '/crl');
    writeFileSync(join(s.dir, 'after.crl'), crl.body);
    const v = openssl(['crl', '-inform', 'DER', '-in', join(s.dir, 'after.crl'), '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-noout', '-text']);
    assert.match(v.stderr + v.stdout, /verify OK/);
    const hex = a.serial.toString(16).toUpperCase().padStart(16, '0');
    assert.match(v.stdout, new RegExp(`Serial Number: ${hex}\\n\\s+Revocation Date: .*\\n\\s+CRL entry extensions:\\n\\s+X509v3 CRL Reason Code: \\n\\s+Key Compromise`));
    assert.doesNotMatch(v.stdout, new RegExp(b.serial.toString(16).toUpperCase()));
    assert.match(v.stdout, /Version 2 \(0x1\)/);
    assert.match(v.stdout, /X509v3 Authority Key Identifier/);
    const n1 = BigInt('0x' + /X509v3 CRL Number: \n\s+([0-9A-F]+)/i.exec(v.stdout)![1]);
    assert.ok(n1 > n0, `CRL number ${n1} after ${n0}`);

    // openssl as a relying party: the revoked certificate fails, the other passes.
    writeFileSync(join(s.dir, 'a.crt'), a.pem);
    writeFileSync(join(s.dir, 'b.crt'), b.pem);
    const pemCrl = httpGet(http, '/crl.pem');
    assert.match(pemCrl.body.toString(), /^-----BEGIN X509 CRL-----\n/);
    writeFileSync(join(s.dir, 'crl.pem.copy'), pemCrl.body);
    const va = openssl(['verify', '-crl_check', '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-CRLfile', join(s.dir, 'crl.pem.copy'), join(s.dir, 'a.crt')]);
    assert.notEqual(va.code, 0);
    assert.match(va.stdout + va.stderr, /certificate revoked/);
    assert.equal(openssl(['verify', '-crl_check', '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-CRLfile', join(s.dir, 'crl.pem.copy'), join(s.dir, 'b.crt')]).code, 0);

    // crl_file holds the same CRL, written before krr answered.
    assert.equal(readFileSync(join(s.dir, 'crl.pem'), 'utf8'), pemCrl.body.toString());

    const etag = /\r\nETag: ("[^"]+")\r\n/i.exec(crl.headers)![1]!;
    assert.equal(httpGet(http, '/crl', [`If-None-Match: ${etag}`]).status, 304);
    assert.equal(httpGet(http, '/crl', ['If-None-Match: "something-else"']).status, 200);
    assert.equal(httpGet(http, '/nope').status, 404);
    const post = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `http://127.0.0.1:${http}/crl`]);
    assert.equal(post.stdout.toString(), '405');
  });

  it('liteboot crl beside the running server writes the server\'s current CRL', () => {
    const r = liteboot(['crl', '--pem', '-o', 'cli.crl'], { cwd: s.dir });
    assert.equal(r.code, 0, r.stderr);
    const server = httpGet(http, '/crl.pem').body.toString();
    const num = (t: string) => /X509v3 CRL Number: \n\s+([0-9A-F]+)/i.exec(t)?.[1];
    const cli = openssl(['crl', '-in', join(s.dir, 'cli.crl'), '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-noout', '-text']);
    assert.match(cli.stdout + cli.stderr, /verify OK/);
    const srv = openssl(['crl', '-noout', '-text'], { input: server }).stdout;
    assert.equal(num(cli.stdout), num(srv));
    // The same entries and number; only the dates and the signature differ.
    const body = (t: string) => t.replace(/(Last|Next) Update: .*/g, '').split('Signature Value')[0];
    assert.equal(body(cli.stdout), body(srv));
    assert.match(r.stderr, new RegExp(`^wrote cli\\.crl: CRL number \\d+, \\d+ revoked\n$`));
  });

  it('the CRL number only grows across a restart, and revoked entries stay', async () => {
    const c = await enrol(s);
    revoke(s, c.serial, 4);
    const text = (b: Buffer) => {
      writeFileSync(join(s.dir, 'x.crl'), b);
      return openssl(['crl', '-inform', 'DER', '-in', join(s.dir, 'x.crl'), '-noout', '-text']).stdout;
    };
    const n = (t: string) => BigInt('0x' + /X509v3 CRL Number: \n\s+([0-9A-F]+)/i.exec(t)![1]);
    const before = text(httpGet(http, '/crl').body);
    await s.stop();
    s = await spawnServer(s.dir, s.cleanup, ['--http-port', String(http)]);
    const after = text(httpGet(s.httpPort, '/crl').body);
    assert.ok(n(after) > n(before));
    assert.match(after, new RegExp(c.serial.toString(16).toUpperCase()));
    assert.match(after, /Superseded/);
  });
});

describe('revocation reasons', () => {
  it('refuses removeFromCRL (8): only for delta CRLs, and OpenSSL would read the entry as not revoked', async () => {
    const s = await startServer();
    try {
      const c = await enrol(s);
      const r = curl(s, identity(s.dir, 'OPERATOR-alice'), '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${c.serial},"Reason":8}`]);
      assert.equal(r.status, 400);
      assert.equal(r.body.toString(), '{"error":"revocation reason 8 is not accepted: give an RFC 5280 CRLReason 0-6, 9 or 10 (8, removeFromCRL, is only for delta CRLs)"}\n');
      assert.equal(curl(s, identity(s.dir, 'BOOTSTRAP'), `/api/v1/cs/${c.serial}`, ['-H', 'Content-Type: application/json']).body.toString(), '{"Status":1}\n');
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});

describe('public_url', () => {
  it('public_url = "" leaves the URLs out; a too-long one is refused at start-up', async () => {
    const s = await startServer({ toml: 'public_url = ""' });
    try {
      const c = await enrol(s);
      const text = openssl(['x509', '-noout', '-text'], { input: c.pem }).stdout;
      assert.doesNotMatch(text, /CRL Distribution Points|Authority Information Access/);
    } finally {
      await s.stop();
      s.cleanup();
    }
    await assert.rejects(startServer({ toml: `public_url = "http://${'a'.repeat(80)}.example/"` }), /public_url is \d+ characters; at most 64/);
  });
});

describe('OCSP on the public listener (RFC 6960), with openssl ocsp as the client', () => {
  let s: TestServer;
  let http: number;
  before(async () => {
    http = await freePort();
    s = await startServer({ args: ['--http-port', String(http)] });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  const ca = () => join(s.dir, 'certs', 'CA.crt');
  const ocsp = (args: string[]) => {
    const r = openssl(['ocsp', '-issuer', ca(), '-CAfile', ca(), '-url', `http://127.0.0.1:${http}/ocsp`, ...args]);
    return { code: r.code, out: r.stdout + r.stderr };
  };

  it('says good with a verified response and the nonce echoed, then revoked with the time and reason after krr', async () => {
    const c = await enrol(s);
    const file = join(s.dir, 'ocsp-dev.crt');
    writeFileSync(file, c.pem);
    const good = ocsp(['-cert', file, '-nonce']);
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /Response verify OK/);
    assert.match(good.out, new RegExp(`${file.replace(/[/.]/g, '\\$&')}: good\\n\\s+This Update: .*\\n\\s+Next Update: `));
    assert.doesNotMatch(good.out, /WARNING: no nonce in response|Nonce Verify error/);

    revoke(s, c.serial, 1);
    const revoked = ocsp(['-cert', file, '-nonce']);
    assert.match(revoked.out, /Response verify OK/);
    assert.match(revoked.out, new RegExp(`: revoked\\n\\s+This Update: .*\\n\\s+Next Update: .*\\n\\s+Reason: keyCompromise\\n\\s+Revocation Time: `));
  });

  it('answers SHA-256 CertIDs, several certificates in one request, and unknown for a serial it never issued', async () => {
    const a = await enrol(s);
    const b = await enrol(s);
    writeFileSync(join(s.dir, 'a.crt'), a.pem);
    writeFileSync(join(s.dir, 'b.crt'), b.pem);
    revoke(s, b.serial, 4);
    // A certificate signed with the CA key but never issued through liteboot.
    const key = join(s.dir, 'stray.key');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/CN=stray', '-out', join(s.dir, 'stray.csr')]);
    const signed = openssl(['x509', '-req', '-in', join(s.dir, 'stray.csr'), '-CA', ca(), '-CAkey', join(s.dir, 'certs', 'CA.key'), '-set_serial', '4242', '-days', '1', '-out', join(s.dir, 'stray.crt')]);
    assert.equal(signed.code, 0, signed.stderr);
    const r = ocsp(['-sha256', '-cert', join(s.dir, 'a.crt'), '-cert', join(s.dir, 'b.crt'), '-cert', join(s.dir, 'stray.crt'), '-nonce']);
    assert.match(r.out, /Response verify OK/);
    assert.match(r.out, /a\.crt: good\n/);
    assert.match(r.out, /b\.crt: revoked\n[\s\S]*Reason: superseded\n/);
    assert.match(r.out, /stray\.crt: unknown\n/);
  });

  it('the GET form (base64, URL-encoded, may hold "/") answers like POST', async () => {
    const c = await enrol(s);
    writeFileSync(join(s.dir, 'g.crt'), c.pem);
    const req = join(s.dir, 'req.der');
    assert.equal(openssl(['ocsp', '-issuer', ca(), '-cert', join(s.dir, 'g.crt'), '-no_nonce', '-reqout', req]).code, 0);
    const b64 = readFileSync(req).toString('base64');
    const got = httpGet(http, `/ocsp/${encodeURIComponent(b64)}`);
    assert.equal(got.status, 200);
    assert.match(got.headers, /\r\nContent-Type: application\/ocsp-response\r\n/i);
    writeFileSync(join(s.dir, 'resp.der'), got.body);
    const v = openssl(['ocsp', '-respin', join(s.dir, 'resp.der'), '-reqin', req, '-issuer', ca(), '-CAfile', ca(), '-cert', join(s.dir, 'g.crt')]);
    assert.match(v.stdout + v.stderr, /Response verify OK/);
    assert.match(v.stdout, /g\.crt: good\n/);
    // The same path unescaped (a '/' in the base64 splits it into segments) reaches the same responder.
    const raw = httpGet(http, `/ocsp/${b64}`);
    assert.equal(raw.status, 200);
  });

  it('answers unauthorized for another issuer and malformedRequest for garbage: never an HTTP error', () => {
    const other = join(s.dir, 'other');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${other}.key`, '-subj', '/CN=other CA', '-days', '1', '-out', `${other}.crt`]);
    const r = openssl(['ocsp', '-issuer', `${other}.crt`, '-cert', `${other}.crt`, '-url', `http://127.0.0.1:${http}/ocsp`]);
    assert.match(r.stdout + r.stderr, /Responder Error: unauthorized \(6\)/);
    for (const body of ['garbage', '0\x03\x02\x01', 'x'.repeat(20_000)]) {
      const f = join(s.dir, 'junk.der');
      writeFileSync(f, body, 'latin1');
      const p = spawnSync('curl', ['-sS', '-H', 'Content-Type: application/ocsp-request', '--data-binary', `@${f}`, '-w', '\n%{http_code}', `http://127.0.0.1:${http}/ocsp`]);
      const [resp, code] = [p.stdout.subarray(0, p.stdout.lastIndexOf(10)), p.stdout.subarray(p.stdout.lastIndexOf(10) + 1).toString()];
      assert.equal(code, '200');
      assert.equal(resp.toString('hex'), '30030a0101'); // OCSPResponse { malformedRequest }
    }
    assert.equal(httpGet(http, '/ocsp/%E0%A4%A').body.toString('hex'), '30030a0101');
    const wrongType = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Content-Type: text/plain', '--data-binary', 'x', `http://127.0.0.1:${http}/ocsp`]);
    assert.equal(wrongType.stdout.toString(), '415');
  });
});

describe('a delegated OCSP responder (ocsp_signer = "delegated")', () => {
  it('setup-ocsp makes it; responses are signed by it, carry it, and verify under the CA', async () => {
    const http = await freePort();
    const s = await startServer({
      args: ['--http-port', String(http)],
      toml: 'ocsp_signer = "delegated"',
      prepare: (dir) => {
        const r = liteboot(['setup-ocsp', '--days', '7'], { cwd: dir });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /wrote .*\/certs\/OCSP\.key\nwrote .*\/certs\/OCSP\.crt\n/);
      },
    });
    try {
      const text = openssl(['x509', '-in', join(s.dir, 'certs', 'OCSP.crt'), '-noout', '-text']).stdout;
      assert.match(text, /X509v3 Extended Key Usage: \n\s+OCSP Signing\n/);
      assert.match(text, /OCSP No Check/);
      const c = await enrol(s);
      writeFileSync(join(s.dir, 'd.crt'), c.pem);
      const ca = join(s.dir, 'certs', 'CA.crt');
      const r = openssl(['ocsp', '-issuer', ca, '-CAfile', ca, '-cert', join(s.dir, 'd.crt'), '-url', `http://127.0.0.1:${http}/ocsp`, '-nonce', '-resp_text']);
      assert.match(r.stdout + r.stderr, /Response verify OK/);
      assert.match(r.stdout, /d\.crt: good\n/);
      assert.match(r.stdout, /Certificate:\n[\s\S]*Subject: O=Linaro, LTD, CN=liteboot OCSP responder\n/);
      const again = liteboot(['setup-ocsp'], { cwd: s.dir });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^liteboot: refusing to overwrite .*OCSP\.crt, .*OCSP\.key; remove them to make a new responder certificate/);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('refuses to start without the responder files, saying what to run', async () => {
    await assert.rejects(startServer({ args: ['--http-port', String(await freePort())], toml: 'ocsp_signer = "delegated"' }), /the OCSP responder certificate not found at .*OCSP\.crt; run `liteboot setup-ocsp`/);
  });
});

describe('the check listener says its verdict', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  /** openssl s_client against the check listener: what it printed after the handshake. */
  const check = (cert?: string, key?: string): string => {
    const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${s.mport}`, '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-ign_eof', '-quiet', ...(cert ? ['-cert', cert, '-key', key!] : [])], { input: '', encoding: 'utf8', timeout: 30_000 });
    // Exit 0: the server closed with close_notify (a bare TCP close is "unexpected eof", exit 1).
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };

  it('OK with the serial and subject for a good certificate; REFUSED for a revoked, a self-signed, an expired and a missing one', async () => {
    const dev = await newDevice(s.dir);
    const r = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', ['-H', 'Content-Type: application/cbor', '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]);
    assert.equal(r.status, 200);
    const certFile = join(s.dir, 'v.crt');
    writeFileSync(certFile, toPem('CERTIFICATE', r.body.subarray(7)));
    const serial = BigInt('0x' + openssl(['x509', '-in', certFile, '-noout', '-serial']).stdout.trim().split('=')[1]);
    assert.equal(check(certFile, dev.keyFile), `OK serial=${serial} subject=CN=${dev.id},OU=Signing,O=Test Vendor\n`);

    revoke(s, serial, 1);
    assert.equal(check(certFile, dev.keyFile), 'REFUSED certificate revoked\n');

    const self = join(s.dir, 'self');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${self}.key`, '-subj', '/CN=stranger', '-days', '1', '-out', `${self}.crt`]);
    assert.equal(check(`${self}.crt`, `${self}.key`), 'REFUSED self-signed certificate\n');

    // Signed by the CA, but its validity ended yesterday.
    const ca = new CertsDir(join(s.dir, 'certs')).loadCa();
    const old = await newDevice(s.dir);
    const der = await deviceCertificate(ca.issuer, { subject: dn({ O: 'Test Vendor', CN: old.id }), serial: 4711n, publicKey: spkiDer(old.key), notBefore: new Date(Date.now() - 3 * 86_400_000), days: 1 });
    writeFileSync(join(s.dir, 'old.crt'), toPem('CERTIFICATE', der));
    assert.equal(check(join(s.dir, 'old.crt'), old.keyFile), 'REFUSED certificate has expired\n');

    assert.equal(check(), 'REFUSED no client certificate\n');
  });
});

describe('GET /api/v1/crl on the REST port', () => {
  it('gives devices the same CRL as the public listener, under mutual TLS', async () => {
    const http = await freePort();
    const s = await startServer({ args: ['--http-port', String(http)] });
    try {
      const c = await enrol(s);
      revoke(s, c.serial, 1);
      const r = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/crl');
      assert.equal(r.status, 200);
      assert.match(r.headers, /\r\nContent-Type: application\/pkix-crl\r\n/i);
      assert.ok(r.body.equals(httpGet(http, '/crl').body), 'the same bytes as GET /crl');
      writeFileSync(join(s.dir, 'api.crl'), r.body);
      const v = openssl(['crl', '-inform', 'DER', '-in', join(s.dir, 'api.crl'), '-CAfile', join(s.dir, 'certs', 'CA.crt'), '-noout', '-text']);
      assert.match(v.stdout + v.stderr, /verify OK/);
      assert.match(v.stdout, new RegExp(`Serial Number: ${c.serial.toString(16).toUpperCase().padStart(16, '0')}`));
      assert.equal(curl(s, undefined, '/api/v1/crl').status, 0, 'no client certificate: refused in TLS');
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});
