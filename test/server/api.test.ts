import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildCsr } from '../../src/asn1/csr.js';
import { dn } from '../../src/asn1/name.js';
import { toPem } from '../../src/asn1/pem.js';
import { version } from '../../src/version.js';
import { openssl } from '../helpers/run.js';
import { Agent } from 'node:https';
import { generateKey } from '../../src/asn1/keys.js';
import { bodyFile, cborCsrBody, curl, httpsRequest, identity, newDevice, startServer, tlsFiles, type Device, type Identity, type TestServer } from '../helpers/server.js';

let s: TestServer;
let bootstrap: Identity;
let operator: Identity;
before(async () => {
  s = await startServer();
  bootstrap = identity(s.dir, 'BOOTSTRAP');
  operator = identity(s.dir, 'OPERATOR-alice');
});
after(async () => {
  assert.equal(await s.stop(), 0, 'exit 0 after SIGTERM');
  s.cleanup();
});

const CBOR = ['-H', 'Content-Type: application/cbor'];
const JSON_CT = ['-H', 'Content-Type: application/json'];
const hex = (b: Buffer) => b.toString('hex');
/** The error body API.md "Errors" prescribes, written out here by hand (not by our codec). */
function errorBody(format: 'json' | 'cbor', message: string): string {
  if (format === 'json') return Buffer.from(`{"error":${JSON.stringify(message)}}\n`).toString('hex');
  const m = Buffer.from(message);
  const head = m.length < 24 ? (0x60 + m.length).toString(16) : m.length < 256 ? '78' + m.length.toString(16).padStart(2, '0') : '79' + m.length.toString(16).padStart(4, '0');
  return `a1656572726f72${head}${hex(m)}`; // {"error": "<message>"}: a map of 1, text key "error", text value
}

/** Enrols over /cr in CBOR; returns the DER and an identity for the new certificate. */
async function enrol(dev?: Device): Promise<{ dev: Device; der: Buffer; serial: bigint; id: Identity }> {
  dev ??= await newDevice(s.dir);
  const r = curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]);
  assert.equal(r.status, 200, r.body.toString());
  const der = r.body.subarray(7);
  const certFile = join(s.dir, 'devices', `${dev.id}-${Date.now()}-${Math.random()}.crt`);
  writeFileSync(certFile, toPem('CERTIFICATE', der));
  const serialHex = openssl(['x509', '-in', certFile, '-noout', '-serial']).stdout.trim().slice(7);
  return { dev, der, serial: BigInt('0x' + serialHex), id: { cert: certFile, key: dev.keyFile } };
}

describe('success bodies, byte for byte (API.md "Endpoints")', () => {
  test('POST /cr in CBOR: a2 01 00 02 59 LLLL <DER>, a certificate openssl verifies, all of it under 1024 bytes', async () => {
    const dev = await newDevice(s.dir);
    const r = curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]);
    assert.equal(r.status, 200);
    assert.equal(hex(r.body.subarray(0, 5)), 'a201000259');
    assert.equal(r.body.readUInt16BE(5), r.body.length - 7);
    const f = join(s.dir, 'cr.crt');
    writeFileSync(f, toPem('CERTIFICATE', r.body.subarray(7)));
    const v = openssl(['verify', '-CAfile', join(s.dir, 'certs/CA.crt'), f]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(r.headers, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.headers, /\r\nContent-Type: application\/cbor\r\n/i);
    assert.match(r.headers, new RegExp(`\\r\\nContent-Length: ${r.body.length}\\r\\n`, 'i'));
    assert.match(r.headers, /\r\nDate: /i);
    assert.doesNotMatch(r.headers, /Transfer-Encoding/i);
    assert.ok(r.headers.length + r.body.length <= 1024, `response is ${r.headers.length + r.body.length} bytes`);
    // the device profile (API.md improvement 3) and the subject from the CSR
    const text = openssl(['x509', '-in', f, '-noout', '-text']).stdout;
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /Extended Key Usage: \s+TLS Web Client Authentication/);
    assert.match(text, /Subject Key Identifier/);
    assert.match(text, /Authority Key Identifier/);
    assert.match(text, new RegExp(`Subject: O = Test Vendor, OU = Signing, CN = ${dev.id}`));
    const serial = BigInt('0x' + openssl(['x509', '-in', f, '-noout', '-serial']).stdout.trim().slice(7));
    assert.ok(serial > 1_700_000_000_000_000_000n && serial < 2n ** 63n, 'a nanosecond timestamp below 2^63');
  });

  test('POST /cr in JSON: {"Status":0,"Cert":"<base64 DER>"}\\n', async () => {
    const dev = await newDevice(s.dir);
    const r = curl(s, bootstrap, '/api/v1/cr', [...JSON_CT, '--data-binary', `{"CSR":"${dev.csr.toString('base64')}"}`]);
    assert.equal(r.status, 200);
    // standard base64 with padding, whole 4-character groups
    const m = /^\{"Status":0,"Cert":"((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)"\}\n$/.exec(r.body.toString());
    assert.ok(m, r.body.toString());
    const der = Buffer.from(m[1]!, 'base64');
    assert.equal(der.toString('base64'), m[1]);
    const f = join(s.dir, 'cr-json.crt');
    writeFileSync(f, toPem('CERTIFICATE', der));
    const v = openssl(['verify', '-CAfile', join(s.dir, 'certs/CA.crt'), f]);
    assert.equal(v.stdout, `${f}: OK\n`, v.stderr);
    assert.equal(openssl(['x509', '-in', f, '-noout', '-subject']).stdout, `subject=O = Test Vendor, OU = Signing, CN = ${dev.id}\n`);
    assert.equal(openssl(['x509', '-in', f, '-noout', '-pubkey']).stdout, openssl(['pkey', '-in', dev.keyFile, '-pubout']).stdout, 'the device\'s key');
    assert.match(r.headers, /\r\nContent-Type: application\/json\r\n/i);
    assert.match(r.headers, new RegExp(`\\r\\nContent-Length: ${r.body.length}\\r\\n`, 'i'));
  });

  test('GET /cs, /ds, /cc in both formats; /krr then changes them', async () => {
    const a = await enrol();
    const b = await enrol(a.dev); // the same key: a bound id re-enrols with its own key
    const hex8 = (n: bigint) => n.toString(16).padStart(16, '0');

    assert.equal(hex(curl(s, bootstrap, `/api/v1/cs/${a.serial}`, CBOR).body), 'a10101');
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${a.serial}`).body.toString(), '{"Status":1}\n');
    assert.equal(hex(curl(s, bootstrap, `/api/v1/ds/${a.dev.id}`, CBOR).body), `a2010102821b${hex8(a.serial)}1b${hex8(b.serial)}`);
    assert.equal(curl(s, bootstrap, `/api/v1/ds/${a.dev.id}`).body.toString(), `{"Status":1,"Serials":[${a.serial},${b.serial}]}\n`);
    const pem = toPem('CERTIFICATE', a.der);
    const cc = curl(s, bootstrap, `/api/v1/cc/${a.serial}`, CBOR).body;
    assert.equal(hex(cc.subarray(0, 5)), 'a201000279');
    assert.equal(cc.readUInt16BE(5), pem.length);
    assert.equal(cc.subarray(7).toString(), pem);
    assert.equal(curl(s, bootstrap, `/api/v1/cc/${a.serial}`).body.toString(), `{"Status":0,"Cert":${JSON.stringify(pem)}}\n`);

    // The device revokes its first certificate with its second one.
    const k = curl(s, b.id, '/api/v1/krr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, Buffer.from(`a1011b${hex8(a.serial)}`, 'hex'))}`]);
    assert.equal(k.status, 200, k.body.toString());
    assert.equal(hex(k.body), 'a10100');
    assert.equal(hex(curl(s, bootstrap, `/api/v1/cs/${a.serial}`, CBOR).body), 'a10100');
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${a.serial}`).body.toString(), '{"Status":0}\n');
    assert.equal(curl(s, bootstrap, `/api/v1/ds/${a.dev.id}`).body.toString(), `{"Status":1,"Serials":[${b.serial}]}\n`);
    const gone = curl(s, bootstrap, `/api/v1/cc/${a.serial}`);
    assert.equal(gone.status, 400);
    assert.equal(gone.body.toString(), '{"error":"invalid serial number"}\n');
    // and the revoked certificate can no longer be used: its connections are closed right after the handshake
    const revokedCall = curl(s, a.id, '/api/v1/ccs');
    assert.notEqual(revokedCall.code, 0, 'refused in TLS');
    assert.equal(revokedCall.status, 0);

    // an operator revokes the second in JSON, with the serial read exactly
    const j = curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', `{"Serial":${b.serial},"Reason":1}`]);
    assert.equal(j.body.toString(), '{"Status":0}\n');
    assert.equal(hex(curl(s, bootstrap, `/api/v1/ds/${a.dev.id}`, CBOR).body), 'a2010002f6');
    assert.equal(curl(s, bootstrap, `/api/v1/ds/${a.dev.id}`).body.toString(), '{"Status":0,"Serials":null}\n');
  });

  test('GET /ccs: the hub short name and the MQTT port', () => {
    assert.equal(hex(curl(s, bootstrap, '/api/v1/ccs', CBOR).body), 'a201687465737' + '42d6875620219' + '22b3');
    assert.equal(curl(s, bootstrap, '/api/v1/ccs').body.toString(), '{"Hubname":"test-hub","Port":8883}\n');
    // the README's example sends both headers
    assert.equal(hex(curl(s, bootstrap, '/api/v1/ccs', [...CBOR, '-H', 'Accept: application/cbor']).body), 'a2016874657374' + '2d6875620219' + '22b3');
  });

  test('GET / is a short text banner', () => {
    const r = curl(s, bootstrap, '/');
    assert.equal(r.status, 200);
    assert.match(r.headers, /\r\nContent-Type: text\/plain; charset=utf-8\r\n/i);
    assert.equal(r.body.toString(), `liteboot ${version}: certificate authority and bootstrap server for localhost\n`);
  });

  test('POST /p10cr: the PEM certificate, application/x-pem-file, <uuid>.crt, a correct Content-Length', async () => {
    const dev = await newDevice(s.dir);
    const csrFile = join(s.dir, 'USER.csr');
    writeFileSync(csrFile, toPem('CERTIFICATE REQUEST', dev.csr));
    const r = curl(s, bootstrap, '/api/v1/p10cr', ['-F', `csrfile=@${csrFile}`]);
    assert.equal(r.status, 200, r.body.toString());
    assert.match(r.headers, /Content-Type: application\/x-pem-file\r\n/i);
    assert.match(r.headers, new RegExp(`Content-Disposition: attachment; filename=${dev.id}\\.crt\\r\\n`, 'i'));
    assert.match(r.headers, new RegExp(`Content-Length: ${r.body.length}\\r\\n`, 'i'));
    assert.doesNotMatch(r.headers, /chunked/i);
    const f = join(s.dir, 'p10.crt');
    writeFileSync(f, r.body);
    assert.equal(openssl(['verify', '-CAfile', join(s.dir, 'certs/CA.crt'), f]).code, 0);
  });

  test('POST /kur: a new certificate for the same CN; the old one stays valid', async () => {
    const a = await enrol();
    const next = await newDevice(s.dir, undefined, a.dev.id);
    const r = curl(s, a.id, '/api/v1/kur', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(next.csr))}`]);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(hex(r.body.subarray(0, 5)), 'a201000259');
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${a.serial}`).body.toString(), '{"Status":1}\n');
    const newDer = r.body.subarray(7);
    assert.equal(r.body.readUInt16BE(5), newDer.length);
    const nf = join(s.dir, 'kur.crt');
    writeFileSync(nf, toPem('CERTIFICATE', newDer));
    assert.equal(openssl(['verify', '-CAfile', join(s.dir, 'certs/CA.crt'), nf]).stdout, `${nf}: OK\n`);
    assert.equal(openssl(['x509', '-in', nf, '-noout', '-pubkey']).stdout, openssl(['pkey', '-in', next.keyFile, '-pubout']).stdout, 'the new key');
    const newSerial = BigInt('0x' + openssl(['x509', '-in', nf, '-noout', '-serial']).stdout.trim().slice(7));
    assert.equal(curl(s, bootstrap, `/api/v1/ds/${a.dev.id}`).body.toString(), `{"Status":1,"Serials":[${a.serial},${newSerial}]}\n`);
    // someone else's CN is refused
    const other = await newDevice(s.dir);
    const bad = curl(s, a.id, '/api/v1/kur', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(other.csr))}`]);
    assert.equal(bad.status, 403);
    assert.equal(hex(bad.body), errorBody('cbor', `the CSR's CN "${other.id}" is not the CN of your certificate`));
    assert.match(bad.headers, /\r\nContent-Type: application\/cbor\r\n/i);
  });
});

describe('errors keep their status and message, in the negotiated format', () => {
  const table: [string, string[], string, number, string][] = [
    ['ds with an unparsable UUID', [], '/api/v1/ds/not-a-uuid', 400, 'need a valid UUID'],
    ['ds with a malformed percent-escape', [], '/api/v1/ds/%E0%A4%A', 400, 'need a valid UUID'],
    ['cs with a serial that is not a number', [], '/api/v1/cs/12ab', 400, 'invalid request'],
    ['cc with a serial that is not a number', [], '/api/v1/cc/-5', 400, 'invalid request'],
    ['cs with an unknown serial', [], '/api/v1/cs/1795721654822870144', 400, 'invalid serial number'],
    ['cc with an unknown serial', [], '/api/v1/cc/1', 400, 'invalid serial number'],
    ['an unsupported Content-Type', ['-H', 'Content-Type: text/plain'], '/api/v1/ccs', 400, 'bad request: Content-Type must be application/cbor or application/json'],
    ['an unknown path', [], '/api/v1/nothing', 404, 'not found'],
    ['a wrong method', ['-X', 'DELETE'], '/api/v1/ccs', 405, 'method not allowed'],
  ];
  for (const [name, args, path, status, message] of table) {
    test(`${name}: ${status} ${message}`, () => {
      const j = curl(s, bootstrap, path, args);
      assert.equal(j.status, status);
      assert.equal(j.body.toString(), `{"error":${JSON.stringify(message)}}\n`);
      assert.match(j.headers, /Content-Type: application\/json\r\n/i);
      if (args.includes('Content-Type: text/plain')) return;
      const c = curl(s, bootstrap, path, [...args, ...CBOR]);
      assert.equal(c.status, status);
      const m = Buffer.from(message);
      assert.equal(hex(c.body), `a1656572726f72${m.length < 24 ? (0x60 + m.length).toString(16) : '78' + m.length.toString(16).padStart(2, '0')}${hex(m)}`);
      assert.match(c.headers, /Content-Type: application\/cbor\r\n/i);
    });
  }

  test('405 carries Allow', () => {
    assert.match(curl(s, bootstrap, '/api/v1/cr').headers, /\r\nAllow: POST\r\n/i);
  });

  test('a /cr body that does not decode as the declared format', async () => {
    const dev = await newDevice(s.dir);
    const cases: [string[], string | Buffer][] = [
      [CBOR, Buffer.from('{"CSR":"x"}')],
      [CBOR, cborCsrBody(dev.csr).subarray(0, 100)], // truncated
      [CBOR, Buffer.concat([cborCsrBody(dev.csr), Buffer.from([0])])], // trailing byte
      [CBOR, Buffer.from([0xa1, 0x01, 0x02])], // a map, not [bstr]
      [JSON_CT, '{"CSR": 5}'],
      [JSON_CT, 'not json'],
      [JSON_CT, '{"CSR":"!!notbase64"}'],
    ];
    for (const [ct, body] of cases) {
      const r = curl(s, bootstrap, '/api/v1/cr', [...ct, '--data-binary', `@${bodyFile(s.dir, body)}`]);
      assert.equal(r.status, 400, String(body));
      assert.equal(hex(r.body), errorBody(ct === CBOR ? 'cbor' : 'json', 'bad request: POST data did not match specified Content-Type'), String(body));
    }
  });

  test('p10cr errors are the original messages, in JSON', async () => {
    const dev = await newDevice(s.dir);
    const pem = toPem('CERTIFICATE REQUEST', dev.csr);
    const file = (name: string, text: string) => {
      const f = join(s.dir, name);
      writeFileSync(f, text);
      return f;
    };
    const cases: [string[], string][] = [
      [[...JSON_CT, '--data-binary', '{}'], 'Bad request (no multipart form)'],
      [['-F', `other=@${file('a.csr', pem)}`], 'Missing csrfile file'],
      [['-F', `csrfile=@${file('big.csr', pem + 'x'.repeat(4096))}`], 'File too large'],
      [['-F', `csrfile=@${file('two.csr', pem + pem)}`], 'Invalid PEM input. Expecting one block'],
      [['-F', `csrfile=@${file('none.csr', 'hello')}`], 'Invalid PEM input. Expecting one block'],
      [['-F', `csrfile=@${file('cert.csr', pem.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'))}`], 'Expecting BEGIN CERTIFICATE REQUEST'],
    ];
    for (const [args, message] of cases) {
      const r = curl(s, bootstrap, '/api/v1/p10cr', args);
      assert.equal(r.status, 400, message);
      assert.equal(r.body.toString(), `{"error":${JSON.stringify(message)}}\n`);
    }
  });

  test('krr with an unknown serial, a bad body, or a reason that is not a CRLReason', () => {
    assert.equal(curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', '{"Serial":1795721654822870144}']).body.toString(), '{"error":"invalid serial number"}\n');
    const text = curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', '{"Serial":"12"}']);
    assert.equal(text.status, 400);
    assert.equal(text.body.toString(), '{"error":"bad request: POST data did not match specified Content-Type"}\n');
    const reason = curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', '{"Serial":1,"Reason":7}']);
    assert.equal(reason.status, 400);
    assert.equal(reason.body.toString(), '{"error":"revocation reason 7 is not accepted: give an RFC 5280 CRLReason 0-6, 9 or 10 (8, removeFromCRL, is only for delta CRLs)"}\n');
  });
});

describe('format negotiation (API.md "Choosing the format")', () => {
  test('media-type parameters and letter case are accepted; Accept selects CBOR without a Content-Type', () => {
    assert.equal(curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Content-Type: application/json; charset=utf-8']).body.toString(), '{"Hubname":"test-hub","Port":8883}\n');
    const ccsCbor = 'a201687465737' + '42d6875620219' + '22b3';
    const upper = curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Content-Type: Application/CBOR']);
    assert.equal(hex(upper.body), ccsCbor);
    assert.match(upper.headers, /\r\nContent-Type: application\/cbor\r\n/i);
    const accept = curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Accept: application/cbor']);
    assert.equal(hex(accept.body), ccsCbor);
    assert.match(accept.headers, /\r\nContent-Type: application\/cbor\r\n/i);
    assert.equal(curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Accept: application/json']).body.toString(), '{"Hubname":"test-hub","Port":8883}\n');
    // the Content-Type decides over Accept
    assert.equal(curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Content-Type: application/json', '-H', 'Accept: application/cbor']).body.toString(), '{"Hubname":"test-hub","Port":8883}\n');
  });
});

describe('policy (API.md "stricter or better" 1, 2, 4)', () => {
  const post = (dev: { csr: Buffer }) => curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]);

  test('a CSR with a broken signature is refused', async () => {
    const dev = await newDevice(s.dir);
    const bad = Buffer.from(dev.csr);
    bad[bad.length - 3]! ^= 0x40;
    const r = post({ csr: bad });
    assert.equal(r.status, 400);
    assert.equal(hex(r.body), errorBody('cbor', 'CSR refused: its signature does not verify with its own key (proof of possession failed)'));
  });

  test('the CN must be a UUID; it is stored and compared in canonical lower case', async () => {
    const notUuid = post(await newDevice(s.dir, dn({ O: 'x', CN: 'my-device' })));
    assert.equal(notUuid.status, 400);
    assert.equal(hex(notUuid.body), errorBody('cbor', 'CSR refused: the CN "my-device" is not a UUID'));
    const id = crypto.randomUUID();
    const r = post(await newDevice(s.dir, dn({ O: 'x', CN: id.toUpperCase() }), id));
    assert.equal(r.status, 200);
    const f = join(s.dir, 'upper.crt');
    writeFileSync(f, toPem('CERTIFICATE', r.body.subarray(7)));
    assert.equal(openssl(['x509', '-in', f, '-noout', '-subject']).stdout, `subject=O = x, CN = ${id}\n`);
    const serial = BigInt('0x' + openssl(['x509', '-in', f, '-noout', '-serial']).stdout.trim().slice(7));
    for (const form of [id, id.toUpperCase(), `{${id}}`, `urn:uuid:${id}`, id.replace(/-/g, '')]) {
      assert.equal(curl(s, bootstrap, `/api/v1/ds/${encodeURIComponent(form)}`).body.toString(), `{"Status":1,"Serials":[${serial}]}\n`, form);
    }
  });

  test('a CSR may not claim the bootstrap or operator OU', async () => {
    for (const ou of ['LinaroCA Bootstrap Cert', 'LinaroCA Operator Cert', 'linaroca bootstrap cert']) {
      const r = post(await newDevice(s.dir, dn({ O: 'Linaro, LTD', OU: ou, CN: crypto.randomUUID() })));
      assert.equal(r.status, 400, ou);
      assert.equal(hex(r.body), errorBody('cbor', `CSR refused: a device may not claim the OU "${ou}" (it is, or looks like, a reserved role)`), ou);
    }
  });

  test('a CSR without an OU is answered', async () => {
    const id = crypto.randomUUID();
    const r = post(await newDevice(s.dir, dn({ CN: id }), id));
    assert.equal(r.status, 200, r.body.toString('latin1'));
    assert.equal(new X509Certificate(r.body.subarray(7)).subject, `CN=${id}`);
  });

  test('extensions requested in the CSR are not copied', async () => {
    const key = join(s.dir, 'ext.key');
    const csr = join(s.dir, 'ext.csr');
    const id = crypto.randomUUID();
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${id}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-outform', 'DER', '-out', csr]);
    const r = curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(require('fs').readFileSync(csr)))}`]);
    assert.equal(r.status, 200);
    const f = join(s.dir, 'ext.crt');
    writeFileSync(f, toPem('CERTIFICATE', r.body.subarray(7)));
    const text = openssl(['x509', '-in', f, '-noout', '-text']).stdout;
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    assert.doesNotMatch(text, /Certificate Sign|CA:TRUE/);
  });

  test('keys: RSA 2048 and Ed25519 accepted, RSA 1024 refused', async () => {
    for (const [args, ok] of [[['-newkey', 'rsa:2048'], true], [['-newkey', 'ed25519'], true], [['-newkey', 'rsa:1024'], false]] as const) {
      const csr = join(s.dir, 'k.csr');
      openssl(['req', '-new', ...args, '-nodes', '-keyout', join(s.dir, 'k.key'), '-subj', `/CN=${crypto.randomUUID()}`, '-outform', 'DER', '-out', csr]);
      const r = curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(require('fs').readFileSync(csr)))}`]);
      assert.equal(r.status, ok ? 200 : 400, args.join(' '));
      if (ok) {
        const f = join(s.dir, 'k.crt');
        writeFileSync(f, toPem('CERTIFICATE', r.body.subarray(7)));
        assert.equal(openssl(['verify', '-CAfile', join(s.dir, 'certs/CA.crt'), f]).stdout, `${f}: OK\n`, args.join(' '));
        assert.equal(openssl(['x509', '-in', f, '-noout', '-pubkey']).stdout, openssl(['pkey', '-in', join(s.dir, 'k.key'), '-pubout']).stdout, `${args.join(' ')}: the CSR's key`);
      } else {
        assert.equal(hex(r.body), errorBody('cbor', 'CSR refused: a RSA 1024 key is not accepted (use ECDSA P-256 or P-384, Ed25519, or RSA 2048-8192)'));
      }
    }
  });
});

import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';

/**
 * openssl s_client with its input held open until it exits, so that what the server does after
 * the client's Finished (a TLS 1.3 alert, a close) is read: it exits when the server closes.
 */
function sClient(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const guard = setTimeout(() => child.kill(), 30_000); // only if the server never closes
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}
const require = createRequire(import.meta.url);

describe('who may call what (API.md table)', () => {
  test('every cell of the table', async () => {
    const dev = await enrol();
    const kurBody = async () => ['--data-binary', `@${bodyFile(s.dir, cborCsrBody((await newDevice(s.dir, undefined, dev.dev.id)).csr))}`];
    const victim = await enrol();
    const cells: [string, Identity, string, string[], boolean][] = [];
    const whoList: [string, Identity][] = [['bootstrap', bootstrap], ['device', dev.id], ['operator', operator]];
    for (const [who, id] of whoList) {
      const enrolOk = who !== 'device';
      cells.push([who, id, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody((await newDevice(s.dir)).csr))}`], enrolOk]);
      const pem = join(s.dir, `p10-${who}.csr`);
      writeFileSync(pem, toPem('CERTIFICATE REQUEST', (await newDevice(s.dir)).csr));
      cells.push([who, id, '/api/v1/p10cr', ['-F', `csrfile=@${pem}`], enrolOk]);
      for (const p of [`/api/v1/cs/${victim.serial}`, `/api/v1/ds/${victim.dev.id}`, `/api/v1/cc/${victim.serial}`, '/api/v1/ccs']) cells.push([who, id, p, [], true]);
      cells.push([who, id, '/api/v1/kur', [...CBOR, ...(await kurBody())], who === 'device']);
    }
    for (const [who, id, path, args, allowed] of cells) {
      const r = curl(s, id, path, args);
      if (allowed) assert.equal(r.status, 200, `${who} ${path}: ${r.body.toString('latin1')}`);
      else {
        assert.equal(r.status, 403, `${who} ${path}`);
        // p10cr answers errors in JSON (API.md); cr and kur in the CBOR they were sent
        assert.equal(hex(r.body), errorBody(path.endsWith('/p10cr') ? 'json' : 'cbor', `a ${who} certificate may not call this endpoint`), `${who} ${path}: ${r.body.toString('latin1')}`);
      }
    }
    // krr: bootstrap no; a device only its own; an operator any
    const body = (serial: bigint) => [...JSON_CT, '--data-binary', `{"Serial":${serial}}`];
    const byBootstrap = curl(s, bootstrap, '/api/v1/krr', body(victim.serial));
    assert.equal(byBootstrap.status, 403);
    assert.equal(byBootstrap.body.toString(), '{"error":"a bootstrap certificate may not call this endpoint"}\n');
    const byOther = curl(s, dev.id, '/api/v1/krr', body(victim.serial));
    assert.equal(byOther.status, 403);
    assert.equal(byOther.body.toString(), '{"error":"a device may revoke only its own certificates"}\n');
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${victim.serial}`).body.toString(), '{"Status":1}\n', 'refused calls revoked nothing');
    const byOperator = curl(s, operator, '/api/v1/krr', body(victim.serial));
    assert.equal(byOperator.status, 200);
    assert.equal(byOperator.body.toString(), '{"Status":0}\n');
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${victim.serial}`).body.toString(), '{"Status":0}\n');
    const own = await enrol(dev.dev); // another certificate of the same device (its bound key)
    assert.equal(curl(s, dev.id, '/api/v1/krr', body(own.serial)).body.toString(), '{"Status":0}\n');
    assert.equal(curl(s, bootstrap, `/api/v1/cs/${own.serial}`).body.toString(), '{"Status":0}\n');
  });

  test('no certificate, or one the CA did not sign, fails in TLS', async () => {
    // no certificate: the handshake fails with an alert (TLS 1.3: certificate_required, after the client's Finished)
    const none13 = curl(s, undefined, '/api/v1/ccs');
    assert.equal(none13.code, 56, none13.stderr);
    assert.match(none13.stderr, /:tlsv13 alert certificate required,/);
    const none12 = curl(s, undefined, '/api/v1/ccs', ['--tls-max', '1.2']);
    assert.equal(none12.code, 35, none12.stderr);
    assert.match(none12.stderr, /:sslv3 alert handshake failure\n/);
    assert.equal(none13.status + none12.status, 0, 'no HTTP answer');
    const key = join(s.dir, 'bad.key');
    const crt = join(s.dir, 'bad.crt');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', '/O=Linaro, LTD/OU=LinaroCA Bootstrap Cert/CN=bootstrap-register-1', '-days', '2']);
    // a foreign certificate: the connection is closed right after the handshake, before any answer
    const r = curl(s, { cert: crt, key }, '/api/v1/ccs');
    // curl 52 (closed) or 56 (reset), depending on whether its request was written before the close
    assert.match(r.stderr, /^curl: \((?:52\) Empty reply from server|56\) Recv failure: Connection reset by peer)\n$/);
    assert.equal(r.status, 0);
    assert.equal(r.body.length, 0);
  });
});

describe('TLS (API.md "Transport")', () => {
  test('TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 works; TLS 1.3 works', () => {
    const r = curl(s, bootstrap, '/api/v1/ccs', ['-v', '--tlsv1.2', '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\n\* SSL connection using TLSv1\.2 \/ ECDHE-ECDSA-AES128-GCM-SHA256\n/);
    assert.equal(r.body.toString(), '{"Hubname":"test-hub","Port":8883}\n');
    const r13 = curl(s, bootstrap, '/api/v1/ccs', ['-v', '--tlsv1.3']);
    assert.equal(r13.code, 0, r13.stderr);
    assert.match(r13.stderr, /\n\* SSL connection using TLSv1\.3 \/ /);
    assert.equal(r13.body.toString(), '{"Hubname":"test-hub","Port":8883}\n');
  });

  test('TLS 1.1 and 1.0 are refused', () => {
    for (const v of ['-tls1_1', '-tls1']) {
      const r = openssl(['s_client', v, '-cipher', 'DEFAULT@SECLEVEL=0', '-connect', `127.0.0.1:${s.port}`, '-cert', bootstrap.cert, '-key', bootstrap.key, '-CAfile', join(s.dir, 'certs/CA.crt')], { input: '' });
      assert.notEqual(r.code, 0, v);
      assert.match(r.stdout, /\nNew, \(NONE\), Cipher is \(NONE\)\n/, v);
      assert.match(r.stderr, /:tlsv1 alert protocol version:.*SSL alert number 70\n/, v); // the server's protocol_version alert
    }
  });
});

describe('limits (API.md improvements 5 and 12)', () => {
  test('a body over the limit is 413', () => {
    const r = curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, Buffer.alloc(64 * 1024, 1))}`]);
    assert.equal(r.status, 413);
    assert.equal(hex(r.body), errorBody('cbor', 'request body too large'));
  });

  test('headers too large are refused', () => {
    const r = curl(s, bootstrap, '/api/v1/ccs', ['-H', `X-Big: ${'a'.repeat(20_000)}`]);
    assert.equal(r.status, 431);
    assert.match(r.headers, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    assert.equal(r.body.length, 0);
  });
});

describe('the mTLS listener', () => {
  test('a device certificate completes the handshake and its chain is logged; others are closed on and logged as refused', async () => {
    const dev = await enrol();
    const caFile = join(s.dir, 'certs/CA.crt');
    const caSerial = BigInt('0x' + openssl(['x509', '-in', caFile, '-noout', '-serial']).stdout.trim().slice(7));
    const caSubject = openssl(['x509', '-in', caFile, '-noout', '-subject', '-nameopt', 'RFC2253']).stdout.trim().replace(/^subject=/, '');
    let from = s.stderr().length;
    const ok = openssl(['s_client', '-connect', `127.0.0.1:${s.mport}`, '-cert', dev.id.cert, '-key', dev.id.key, '-CAfile', caFile, '-servername', 'localhost', '-verify_return_error', '-ign_eof'], { input: '' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /\nVerify return code: 0 \(ok\)\n/);
    assert.ok(ok.stdout.includes(`OK serial=${dev.serial} subject=CN=${dev.dev.id},OU=Signing,O=Test Vendor\n`), ok.stdout);
    const accepted = await s.waitForStderr(/ INFO mtls: connection accepted from 127\.0\.0\.1:\d+ (.*)\n/, from);
    assert.equal(accepted[1], `[0] subject="CN=${dev.dev.id},OU=Signing,O=Test Vendor" serial=${dev.serial} [1] subject="${caSubject}" serial=${caSerial}`);

    const key = join(s.dir, 'USERBAD.key');
    const crt = join(s.dir, 'USERBAD.crt');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', '/O=Linaro, LTD/CN=localhost', '-days', '2']);
    // No TLS alert for a bad client certificate (see mtls-listener.ts): the client has verified the
    // server, reads the verdict line and a close_notify (exit 0); the log says why it was refused.
    const closedOn = (r: { code: number | null; stdout: string; stderr: string }, what: string, reason: string) => {
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.match(r.stdout, /\n {0,4}Verify return code: 0 \(ok\)\n/, what);
      assert.ok(r.stdout.includes(`REFUSED ${reason}\n`), `${what}: ${r.stdout}`);
      assert.doesNotMatch(r.stdout, /OK serial=/, what);
    };
    for (const version of ['-tls1_2', '-tls1_3']) {
      from = s.stderr().length;
      closedOn(await sClient(['-connect', `127.0.0.1:${s.mport}`, '-cert', crt, '-key', key, '-CAfile', caFile, version]), version, 'self-signed certificate');
      const refused = await s.waitForStderr(/ INFO mtls: connection from 127\.0\.0\.1:\d+ (.*)\n/, from);
      assert.equal(refused[1], 'refused: DEPTH_ZERO_SELF_SIGNED_CERT (certificate O=Linaro, LTD,CN=localhost)', version);
    }
    from = s.stderr().length;
    closedOn(await sClient(['-connect', `127.0.0.1:${s.mport}`, '-CAfile', caFile]), 'no certificate', 'no client certificate');
    assert.match((await s.waitForStderr(/ INFO mtls: (.*)\n/, from))[1]!, /^connection from 127\.0\.0\.1:\d+ refused: [A-Z_]+$/, 'no certificate');
    assert.doesNotMatch(s.stderr(), /accepted .*CN=localhost,O=Linaro/);

    // revoked: refused at once
    assert.equal(curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', `{"Serial":${dev.serial}}`]).body.toString(), '{"Status":0}\n');
    for (const version of ['-tls1_2', '-tls1_3']) {
      from = s.stderr().length;
      closedOn(await sClient(['-connect', `127.0.0.1:${s.mport}`, '-cert', dev.id.cert, '-key', dev.id.key, '-CAfile', caFile, version]), `revoked ${version}`, 'certificate revoked');
      const refused = await s.waitForStderr(/ INFO mtls: connection from 127\.0\.0\.1:\d+ (.*)\n/, from);
      assert.equal(refused[1], `refused: CERT_REVOKED (certificate O=Test Vendor,OU=Signing,CN=${dev.dev.id})`, version);
    }
  });
});

describe('concurrency (API.md improvement 6)', () => {
  test('64 enrolments from 16 concurrent clients all succeed, with distinct serials, each verified and recorded', async () => {
    const CLIENTS = 16;
    const EACH = 4;
    const tls = tlsFiles(s.dir, bootstrap);
    const caCert = new X509Certificate(tls.ca);
    // Keys and CSRs first, so that the clients do nothing but send.
    const devs = await Promise.all(Array.from({ length: CLIENTS * EACH }, async () => {
      const id = crypto.randomUUID();
      return { id, csr: await buildCsr(dn({ CN: id }), generateKey()) };
    }));
    let inFlight = 0;
    let maxInFlight = 0;
    const results: { id: string; status: number; body: Buffer; localPort: number }[] = [];
    const client = async (c: number) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let i = 0; i < EACH; i++) {
          const dev = devs[c * EACH + i]!;
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          const r = await httpsRequest(s, tls, 'POST', '/api/v1/cr', { agent, headers: { 'Content-Type': 'application/cbor' }, body: cborCsrBody(dev.csr) });
          inFlight--;
          results.push({ id: dev.id, ...r });
        }
      } finally {
        agent.destroy();
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));

    assert.equal(results.length, CLIENTS * EACH);
    assert.equal(maxInFlight, CLIENTS, 'all 16 clients had a request outstanding at once');
    assert.equal(new Set(results.map((r) => r.localPort)).size, CLIENTS, 'one connection per client');
    for (const r of results) {
      assert.equal(r.status, 200, r.body.toString('latin1'));
      assert.equal(hex(r.body.subarray(0, 5)), 'a201000259', r.id);
      assert.equal(r.body.readUInt16BE(5), r.body.length - 7, r.id);
    }
    // Each certificate parsed by OpenSSL (node:crypto), chained to the CA, for the CN asked.
    const certs = results.map((r) => ({ id: r.id, der: r.body.subarray(7), x: new X509Certificate(r.body.subarray(7)) }));
    for (const c of certs) {
      assert.ok(c.x.checkIssued(caCert) && c.x.verify(caCert.publicKey), `${c.id}: signed by the CA`);
      assert.equal(c.x.subject, `CN=${c.id}`);
    }
    const serials = certs.map((c) => BigInt('0x' + c.x.serialNumber));
    assert.equal(new Set(serials).size, CLIENTS * EACH, 'distinct serials');
    // and openssl verify, all 64 in one run
    const files = certs.map((c, i) => {
      const f = join(s.dir, `conc-${i}.crt`);
      writeFileSync(f, toPem('CERTIFICATE', c.der));
      return f;
    });
    const v = openssl(['verify', '-CAfile', join(s.dir, 'certs/CA.crt'), ...files]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout, files.map((f) => `${f}: OK\n`).join(''));
    // every one recorded: cs answers Status 1 and ds lists exactly that serial for its device
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      await Promise.all(certs.map(async (c, i) => {
        const cs = await httpsRequest(s, tls, 'GET', `/api/v1/cs/${serials[i]}`, { agent, headers: { 'Content-Type': 'application/cbor' } });
        assert.equal(hex(cs.body), 'a10101', `cs ${serials[i]}`);
        const ds = await httpsRequest(s, tls, 'GET', `/api/v1/ds/${c.id}`, { agent });
        assert.equal(ds.body.toString(), `{"Status":1,"Serials":[${serials[i]}]}\n`);
      }));
    } finally {
      agent.destroy();
    }
  });
});
