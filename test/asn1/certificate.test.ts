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
  const f = join(tmp.dir, 'times.pem');
  writeFileSync(f, toPem('CERTIFICATE', der));
  assert.equal(openssl(['x509', '-in', f, '-noout', '-startdate', '-enddate']).stdout, 'notBefore=Jan  1 00:00:00 2026 GMT\nnotAfter=Jan  1 00:00:00 2050 GMT\n');
});

test('a certificate that would expire before it starts is refused', async () => {
  await assert.rejects(() => buildCertificate({ ...template, notAfter: template.notBefore }, keySigner(ed)), /expire before/);
});

test('names: PrintableString where possible, UTF8String otherwise, RFC 4514 string form', async () => {
  // Golden DER, derived by hand: SEQUENCE { SET { SEQUENCE { OID, string } } } per attribute.
  // O (2.5.4.10) = "Linaro, LTD": all PrintableString characters, so tag 0x13.
  assert.equal(encodeName(dn({ O: 'Linaro, LTD' })).toString('hex'), '3016' + '3114' + '3012' + '060355040a' + '130b' + Buffer.from('Linaro, LTD').toString('hex'));
  // "Zürich & Co" is 12 UTF-8 bytes; neither ü nor & is printable, so tag 0x0c (whose length is also 0x0c).
  assert.equal(encodeName(dn({ O: 'Zürich & Co' })).toString('hex'), '301731153013060355040a' + '0c0c' + '5ac3bc72696368202620436f');
  // C is always PrintableString (RFC 5280 App. A); an ASCII value with & is UTF8String; CN=x is printable.
  assert.equal(
    encodeName(dn({ C: 'DE', O: 'A&B', CN: 'x' })).toString('hex'),
    '3027' + '310b3009060355040613024445' + '310c300a060355040a0c03412642' + '310a30080603550403130178',
  );
  assert.equal(formatName(dn({ O: 'Linaro, LTD', OU: 'Signing', CN: 'abc' })), 'CN=abc,OU=Signing,O=Linaro\\, LTD');
});

test('openssl asn1parse reads each name value with the string type we meant', async () => {
  const subject = dn({ C: 'DE', O: 'Zürich & Co', CN: 'Test Root' });
  const der = await buildCertificate({ ...template, issuer: subject, subject }, keySigner(ed));
  const f = join(tmp.dir, 'names.der');
  writeFileSync(f, der);
  const r = openssl(['asn1parse', '-inform', 'DER', '-in', f]);
  assert.equal(r.code, 0, r.stderr);
  // issuer and subject: each attribute's value, in order, as openssl names its type
  const values = [...r.stdout.matchAll(/prim: (PRINTABLESTRING|UTF8STRING|IA5STRING|T61STRING|BMPSTRING)\s*:(.*)$/gm)].map((m) => `${m[1]}:${m[2]}`);
  const one = ['PRINTABLESTRING:DE', 'UTF8STRING:Zürich & Co', 'PRINTABLESTRING:Test Root'];
  assert.deepEqual(values, [...one, ...one]);
});

test('certificates parse what openssl made', async () => {
  const key = join(tmp.dir, 'o.key');
  const crt = join(tmp.dir, 'o.crt');
  assert.equal(openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', key, '-out', crt, '-subj', '/O=Acme/CN=x', '-days', '2', '-outform', 'DER']).code, 0);
  const r = openssl(['x509', '-inform', 'DER', '-in', crt, '-noout', '-serial', '-enddate']);
  const c = parseCertificate(readFileSync(crt));
  assert.equal(c.serial, BigInt('0x' + /^serial=([0-9A-F]+)$/m.exec(r.stdout)![1]!));
  assert.equal(formatName(c.subject), 'CN=x,O=Acme');
  assert.equal(c.notAfter.getTime(), Date.parse(/^notAfter=(.*)$/m.exec(r.stdout)![1]!));
});


