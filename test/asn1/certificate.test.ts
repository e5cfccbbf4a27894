import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildCertificate, parseCertificate, serialFromDer, serialToDer } from '../../src/asn1/certificate.js';
import { basicConstraints } from '../../src/asn1/extensions.js';
import { spkiDer } from '../../src/asn1/keys.js';
import { dn, encodeName, formatName } from '../../src/asn1/name.js';
import { toPem } from '../../src/asn1/pem.js';
import { keySigner } from '../../src/asn1/signer.js';
import { openssl, tempDir } from '../helpers/run.js';

const tmp = tempDir();
after(tmp.cleanup);

// Ed25519 signatures are deterministic (RFC 8032 §5.1.6), so whole certificates compare by bytes.
const ed = generateKeyPairSync('ed25519').privateKey;
const template = {
  serial: 1795722176495076734n,
  issuer: dn({ O: 'Linaro, LTD', CN: 'Test Root' }),
  subject: dn({ O: 'Linaro, LTD', CN: 'Test Root' }),
  notBefore: new Date('2026-01-01T00:00:00Z'),
  notAfter: new Date('2027-01-01T00:00:00Z'),
  publicKey: spkiDer(ed),
  extensions: [basicConstraints(true)],
};

test('the builder is pure: the same inputs give the same bytes', async () => {
  const a = await buildCertificate(template, keySigner(ed));
  const b = await buildCertificate({ ...template, extensions: [basicConstraints(true)] }, keySigner(ed));
  assert.deepEqual(a, b);
  const c = await buildCertificate({ ...template, serial: template.serial + 1n }, keySigner(ed));
  assert.notDeepEqual(a, c);
});

test('serials above 2^53 survive the round trip exactly and openssl reads the same value', async () => {
  const der = await buildCertificate(template, keySigner(ed));
  assert.equal(parseCertificate(der).serial, 1795722176495076734n);
  const f = join(tmp.dir, 'serial.pem');
  writeFileSync(f, toPem('CERTIFICATE', der));
  const r = openssl(['x509', '-in', f, '-noout', '-serial']);
  assert.equal(r.stdout.trim(), 'serial=18EBAFCE2D47C57E');
});

test('RFC 5280 §4.1.2.2 serial encoding: positive, minimal, sign byte when the top bit is set', async () => {
  assert.deepEqual([...serialToDer(1n)], [0x01]);
  assert.deepEqual([...serialToDer(0x7fn)], [0x7f]);
  assert.deepEqual([...serialToDer(0x80n)], [0x00, 0x80]);
  assert.deepEqual([...serialToDer((1n << 63n) - 1n)], [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assert.deepEqual([...serialToDer(1n << 63n)], [0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => serialToDer(0n), /positive/);
  assert.throws(() => serialToDer(-5n), /positive/);
  assert.throws(() => serialToDer(1n << 160n), /20 octets/);
  for (const v of [1n, 127n, 128n, 255n, 256n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 127n - 1n]) {
    assert.equal(serialFromDer(serialToDer(v)), v);
  }
});

test('RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050', async () => {
  const der = await buildCertificate({ ...template, notAfter: new Date('2050-01-01T00:00:00Z') }, keySigner(ed));
  const hex = der.toString('hex');
  assert.ok(hex.includes('170d' + Buffer.from('260101000000Z').toString('hex')), 'UTCTime notBefore');
  assert.ok(hex.includes('180f' + Buffer.from('20500101000000Z').toString('hex')), 'GeneralizedTime notAfter');
  const c = parseCertificate(der);
  assert.equal(c.notAfter.toISOString(), '2050-01-01T00:00:00.000Z');
});

test('a certificate that would expire before it starts is refused', async () => {
  await assert.rejects(() => buildCertificate({ ...template, notAfter: template.notBefore }, keySigner(ed)), /expire before/);
});

test('names: PrintableString where possible, UTF8String otherwise, RFC 4514 string form', async () => {
  const printable = encodeName(dn({ O: 'Linaro, LTD' }));
  assert.ok(printable.toString('hex').includes('130b' + Buffer.from('Linaro, LTD').toString('hex')));
  const utf8 = encodeName(dn({ O: 'Zürich & Co' }));
  assert.ok(utf8.toString('hex').includes('0c'), 'UTF8String tag');
  assert.equal(formatName(dn({ O: 'Linaro, LTD', OU: 'Signing', CN: 'abc' })), 'CN=abc,OU=Signing,O=Linaro\\, LTD');
});

test('certificates parse what openssl made', async () => {
  const key = join(tmp.dir, 'o.key');
  const crt = join(tmp.dir, 'o.crt');
  assert.equal(openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', key, '-out', crt, '-subj', '/O=Acme/CN=x', '-days', '2', '-outform', 'DER']).code, 0);
  const r = openssl(['x509', '-inform', 'DER', '-in', crt, '-noout', '-serial']);
  const c = parseCertificate(readFileSync(crt));
  assert.equal(c.serial.toString(16).toUpperCase().padStart(r.stdout.trim().length - 7, '0'), r.stdout.trim().slice(7));
  assert.equal(formatName(c.subject), 'CN=x,O=Acme');
});


