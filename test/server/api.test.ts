import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildCsr } from '../../src/asn1/csr.js';
import { dn } from '../../src/asn1/name.js';
import { toPem } from '../../src/asn1/pem.js';
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
    const m = /^\{"Status":0,"Cert":"([A-Za-z0-9+/=]+)"\}\n$/.exec(r.body.toString());
    assert.ok(m, r.body.toString());
    assert.equal(Buffer.from(m[1]!, 'base64')[0], 0x30);
    assert.match(r.headers, /Content-Type: application\/json\r\n/i);
  });

  test('GET /cs, /ds, /cc in both formats; /krr then changes them', async () => {
    const a = await enrol();
    const b = await enrol(await newDevice(s.dir, undefined, a.dev.id));
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
    assert.match(r.headers, /Content-Type: text\/plain/i);
    assert.match(r.body.toString(), /^liteboot /);
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
    const ds = JSON.parse(curl(s, bootstrap, `/api/v1/ds/${a.dev.id}`).body.toString().replace(/(\d{16,})/g, '"$1"')) as { Serials: string[] };
    assert.equal(ds.Serials.length, 2);
    // someone else's CN is refused
    const other = await newDevice(s.dir);
    const bad = curl(s, a.id, '/api/v1/kur', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(other.csr))}`]);
    assert.equal(bad.status, 403);
    assert.match(bad.headers, /Content-Type: application\/cbor/i);
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
      assert.match(r.body.toString('latin1'), /bad request: POST data did not match specified Content-Type/);
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
    assert.equal(curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', '{"Serial":"12"}']).status, 400);
    assert.equal(curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', '{"Serial":1,"Reason":7}']).status, 400);
  });
});

describe('format negotiation (API.md "Choosing the format")', () => {
  test('media-type parameters and letter case are accepted; Accept selects CBOR without a Content-Type', () => {
    assert.equal(curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Content-Type: application/json; charset=utf-8']).body.toString(), '{"Hubname":"test-hub","Port":8883}\n');
    assert.equal(hex(curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Content-Type: Application/CBOR']).body).slice(0, 4), 'a201');
    assert.equal(hex(curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Accept: application/cbor']).body).slice(0, 4), 'a201');
    assert.equal(curl(s, bootstrap, '/api/v1/ccs', ['-H', 'Accept: application/json']).body.toString()[0], '{');
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
    assert.match(r.body.toString('latin1'), /signature does not verify/);
  });

  test('the CN must be a UUID; it is stored and compared in canonical lower case', async () => {
    assert.match(post(await newDevice(s.dir, dn({ O: 'x', CN: 'my-device' }))).body.toString('latin1'), /is not a UUID/);
    const id = crypto.randomUUID();
    const r = post(await newDevice(s.dir, dn({ O: 'x', CN: id.toUpperCase() }), id));
    assert.equal(r.status, 200);
    const f = join(s.dir, 'upper.crt');
    writeFileSync(f, toPem('CERTIFICATE', r.body.subarray(7)));
    assert.match(openssl(['x509', '-in', f, '-noout', '-subject']).stdout, new RegExp(`CN = ${id}\\n`));
    for (const form of [id, id.toUpperCase(), `{${id}}`, `urn:uuid:${id}`, id.replace(/-/g, '')]) {
      assert.match(curl(s, bootstrap, `/api/v1/ds/${encodeURIComponent(form)}`).body.toString(), /^\{"Status":1,"Serials":\[\d+\]\}\n$/, form);
    }
  });

  test('a CSR may not claim the bootstrap or operator OU', async () => {
    for (const ou of ['LinaroCA Bootstrap Cert', 'LinaroCA Operator Cert', 'linaroca bootstrap cert']) {
      const r = post(await newDevice(s.dir, dn({ O: 'Linaro, LTD', OU: ou, CN: crypto.randomUUID() })));
      assert.equal(r.status, 400, ou);
      assert.match(r.body.toString('latin1'), /may not claim the OU/);
    }
  });

  test('a CSR without an OU is answered', async () => {
    assert.equal(post(await newDevice(s.dir, dn({ CN: crypto.randomUUID() }))).status, 200);
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
    assert.match(text, /CA:FALSE/);
    assert.doesNotMatch(text, /Certificate Sign/);
  });

  test('keys: RSA 2048 and Ed25519 accepted, RSA 1024 refused', async () => {
    for (const [args, ok] of [[['-newkey', 'rsa:2048'], true], [['-newkey', 'ed25519'], true], [['-newkey', 'rsa:1024'], false]] as const) {
      const csr = join(s.dir, 'k.csr');
      openssl(['req', '-new', ...args, '-nodes', '-keyout', join(s.dir, 'k.key'), '-subj', `/CN=${crypto.randomUUID()}`, '-outform', 'DER', '-out', csr]);
      const r = curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(require('fs').readFileSync(csr)))}`]);
      assert.equal(r.status, ok ? 200 : 400, args.join(' '));
    }
  });
});

import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';

/** openssl s_client that keeps its input open a moment, so a TLS 1.3 alert sent after the client's Finished is read. */
function sClient(args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync('sh', ['-c', `sleep 1 | openssl s_client ${args.map((a) => `'${a}'`).join(' ')}`], { encoding: 'utf8', timeout: 20_000 });
  return { stdout: r.stdout, stderr: r.stderr };
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
        assert.match(r.body.toString('latin1'), /"error"|error/);
      }
    }
    // krr: bootstrap no; a device only its own; an operator any
    const body = (serial: bigint) => [...JSON_CT, '--data-binary', `{"Serial":${serial}}`];
    assert.equal(curl(s, bootstrap, '/api/v1/krr', body(victim.serial)).status, 403);
    assert.equal(curl(s, dev.id, '/api/v1/krr', body(victim.serial)).status, 403);
    assert.equal(curl(s, operator, '/api/v1/krr', body(victim.serial)).status, 200);
    const own = await enrol(await newDevice(s.dir, undefined, dev.dev.id));
    assert.equal(curl(s, dev.id, '/api/v1/krr', body(own.serial)).status, 200);
  });

  test('no certificate, or one the CA did not sign, fails in TLS', async () => {
    assert.notEqual(curl(s, undefined, '/api/v1/ccs').code, 0);
    const key = join(s.dir, 'bad.key');
    const crt = join(s.dir, 'bad.crt');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', '/O=Linaro, LTD/OU=LinaroCA Bootstrap Cert/CN=bootstrap-register-1', '-days', '2']);
    const r = curl(s, { cert: crt, key }, '/api/v1/ccs');
    assert.notEqual(r.code, 0);
    assert.equal(r.status, 0);
  });
});

describe('TLS (API.md "Transport")', () => {
  test('TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 works; TLS 1.3 works', () => {
    const r = curl(s, bootstrap, '/api/v1/ccs', ['--tlsv1.2', '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256', '-w', ' %{ssl_verify_result}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(curl(s, bootstrap, '/api/v1/ccs', ['--tlsv1.3']).code, 0);
  });

  test('TLS 1.1 and 1.0 are refused', () => {
    for (const v of ['-tls1_1', '-tls1']) {
      const r = openssl(['s_client', v, '-cipher', 'DEFAULT@SECLEVEL=0', '-connect', `127.0.0.1:${s.port}`, '-cert', bootstrap.cert, '-key', bootstrap.key, '-CAfile', join(s.dir, 'certs/CA.crt')], { input: '' });
      assert.notEqual(r.code, 0, v);
      assert.match(r.stdout, /Cipher is \(NONE\)/, v);
      assert.match(r.stderr, /protocol version|unsupported protocol|no protocols available/i, v);
    }
  });
});

describe('limits (API.md improvements 5 and 12)', () => {
  test('a body over the limit is 413', () => {
    const r = curl(s, bootstrap, '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, Buffer.alloc(64 * 1024, 1))}`]);
    assert.equal(r.status, 413);
  });

  test('headers too large are refused', () => {
    const r = curl(s, bootstrap, '/api/v1/ccs', ['-H', `X-Big: ${'a'.repeat(20_000)}`]);
    assert.equal(r.status, 431);
  });
});

describe('the mTLS listener', () => {
  test('a device certificate completes the handshake and its chain is logged; others get an alert', async () => {
    const dev = await enrol();
    const ok = openssl(['s_client', '-connect', `127.0.0.1:${s.mport}`, '-cert', dev.id.cert, '-key', dev.id.key, '-CAfile', join(s.dir, 'certs/CA.crt'), '-servername', 'localhost', '-verify_return_error'], { input: '' });
    assert.match(ok.stdout, /Verify return code: 0 \(ok\)/);
    await new Promise((r) => setTimeout(r, 200));
    assert.match(s.stderr(), new RegExp(`mtls: connection accepted from 127\\.0\\.0\\.1:\\d+ \\[0\\] subject="CN=${dev.dev.id},OU=Signing,O=Test Vendor" serial=${dev.serial} \\[1\\] subject="CN=LRC - \\d+,O=Linaro\\\\, LTD" serial=\\d+`));

    const key = join(s.dir, 'USERBAD.key');
    const crt = join(s.dir, 'USERBAD.crt');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', '/O=Linaro, LTD/CN=localhost', '-days', '2']);
    // Node closes the connection right after the handshake (no alert: see mtls-listener.ts).
    for (const version of ['-tls1_2', '-tls1_3']) {
      const bad = sClient(['-connect', `127.0.0.1:${s.mport}`, '-cert', crt, '-key', key, '-CAfile', join(s.dir, 'certs/CA.crt'), version]);
      assert.match(bad.stderr, /unexpected eof|alert/i, version);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.match(s.stderr(), /mtls: connection from 127\.0\.0\.1:\d+ refused: [A-Z_]+ \(certificate O=Linaro, LTD,CN=localhost\)/);
    assert.doesNotMatch(s.stderr(), /accepted .*CN=localhost,O=Linaro/);
    const none = sClient(['-connect', `127.0.0.1:${s.mport}`, '-CAfile', join(s.dir, 'certs/CA.crt')]);
    assert.match(none.stderr + none.stdout, /unexpected eof|alert|refused/i);

    // revoked: refused at once
    assert.equal(curl(s, operator, '/api/v1/krr', [...JSON_CT, '--data-binary', `{"Serial":${dev.serial}}`]).status, 200);
    for (const version of ['-tls1_2', '-tls1_3']) {
      const revoked = sClient(['-connect', `127.0.0.1:${s.mport}`, '-cert', dev.id.cert, '-key', dev.id.key, '-CAfile', join(s.dir, 'certs/CA.crt'), version]);
      assert.match(revoked.stderr, /unexpected eof|alert/i, version);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.match(s.stderr(), /mtls: connection from 127\.0\.0\.1:\d+ refused: CERT_REVOKED/);
  });
});

describe('concurrency (API.md improvement 6)', () => {
  test('64 enrolments from 16 concurrent clients all succeed, with distinct serials, each verified and recorded', async () => {
    const { X509Certificate } = await import('node:crypto');
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
