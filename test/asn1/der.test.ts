import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeOid, integer, oid, readTlv, time } from '../../src/asn1/der.js';
import { keyUsage, KeyUsageFlags, subjectAltName } from '../../src/asn1/extensions.js';

test('OIDs encode and decode (X.690 §8.19)', () => {
  for (const o of ['2.5.4.3', '1.2.840.10045.4.3.2', '1.3.6.1.5.5.7.3.2', '2.999.1', '1.2.840.113549.1.9.14']) {
    const enc = oid(o);
    assert.equal(decodeOid(enc.subarray(2), 'x'), o);
  }
  assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
});

test('INTEGER is minimal two\'s complement', () => {
  assert.equal(integer(0n).toString('hex'), '020100');
  assert.equal(integer(127n).toString('hex'), '02017f');
  assert.equal(integer(128n).toString('hex'), '02020080');
  assert.equal(integer(1795721654822870144n).toString('hex'), '020818ebaf54b7319c80');
  assert.equal(integer(2n ** 63n).toString('hex'), '0209008000000000000000');
});

test('times: UTCTime to 2049, GeneralizedTime from 2050', () => {
  assert.equal(time(new Date('2049-12-31T23:59:59Z')).toString('latin1').slice(2), '491231235959Z');
  assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1').slice(2), '20500101000000Z');
});

test('key usage bits as a DER named-bit string', () => {
  assert.ok(keyUsage(KeyUsageFlags.digitalSignature).toString('hex').endsWith('0404030207 80'.replace(/ /g, '')));
  assert.ok(keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign).toString('hex').endsWith('04040302 0106'.replace(/ /g, '')));
});

test('IPv6 and IPv4 SANs are 16 and 4 bytes', () => {
  assert.ok(subjectAltName(['::1']).toString('hex').includes('8710' + '00'.repeat(15) + '01'));
  assert.ok(subjectAltName(['192.0.2.1']).toString('hex').includes('8704c0000201'));
  assert.ok(subjectAltName(['fe80::1:2']).toString('hex').includes('8710fe80' + '00'.repeat(10) + '00010002'));
});

test('the reader refuses what DER forbids', () => {
  const cases: [string, string, RegExp][] = [
    ['truncated header', '30', /truncated/],
    ['length past the end', '3005020100', /truncated/],
    ['indefinite length', '30800000', /indefinite/],
    ['non-minimal long form', '308103020100', /non-minimal/],
    ['leading zero length byte', '30820003020100', /non-minimal/],
    ['huge length', '3085ffffffffff', /too large/],
    ['multi-byte tag', '1f2a0100', /multi-byte/],
  ];
  for (const [name, hex, re] of cases) {
    const b = Buffer.from(hex, 'hex');
    assert.throws(() => readTlv(b, 0, b.length, 'x'), re, name);
  }
});
