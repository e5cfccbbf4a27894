import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeOid, integer, oid, readTlv, time } from '../../src/asn1/der.js';
import { keyUsage, KeyUsageFlags, subjectAltName } from '../../src/asn1/extensions.js';

test('OIDs encode and decode (X.690 §8.19)', () => {
  for (const o of ['2.5.4.3', '1.2.840.10045.4.3.2', '1.3.6.1.5.5.7.3.2', '2.999.1', '1.2.840.113549.1.9.14']) {
    const enc = oid(o);
    assert.equal(decodeOid(enc.subarray(2), 'x'), o);
  }
  // Golden bytes: a round trip alone would pass a codec that is wrong both ways.
  assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(oid('2.5.4.3').toString('hex'), '0603550403');
  // 2.999: the first two arcs make 40*2+999 = 1079 = 0x437, base-128 over two bytes
  assert.equal(oid('2.999.1').toString('hex'), '0603883701');
  assert.equal(decodeOid(Buffer.from('883701', 'hex'), 'x'), '2.999.1');
});

test('an OBJECT IDENTIFIER longer than 64 octets is refused before it is decoded (its cost grows with the square of its length)', () => {
  const arcs = (n: number) => Buffer.concat([Buffer.from([0x2a]), Buffer.alloc(n - 2, 0x81), Buffer.from([0x01])]); // 1.2.<one long arc>
  assert.match(decodeOid(arcs(64), 'the CSR'), /^1\.2\.\d+$/);
  assert.throws(() => decodeOid(arcs(65), 'the CSR'), (e: Error & { code?: string }) => e.code === 'BAD_DER' && /the CSR is not valid DER: an OBJECT IDENTIFIER longer than 64 octets/.test(e.message));
  assert.throws(() => decodeOid(arcs(16_000), 'the CSR'), /longer than 64 octets/);
});

test('INTEGER is minimal two\'s complement', () => {
  assert.equal(integer(0n).toString('hex'), '020100');
  assert.equal(integer(127n).toString('hex'), '02017f');
  assert.equal(integer(128n).toString('hex'), '02020080');
  assert.equal(integer(1795721654822870144n).toString('hex'), '020818ebaf54b7319c80');
  assert.equal(integer(2n ** 63n).toString('hex'), '0209008000000000000000');
});

test('times: UTCTime to 2049, GeneralizedTime from 2050', () => {
  // the whole TLV: tag 0x17 UTCTime / 0x18 GeneralizedTime, the length, then the ASCII digits
  assert.equal(time(new Date('2049-12-31T23:59:59Z')).toString('hex'), '170d' + Buffer.from('491231235959Z').toString('hex'));
  assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('hex'), '180f' + Buffer.from('20500101000000Z').toString('hex'));
});

// Whole extensions, byte for byte: SEQUENCE { OID, [critical BOOLEAN TRUE], OCTET STRING { value } }.
const hex = (s: string) => s.replace(/ /g, '');

test('key usage bits as a critical DER named-bit string (X.690 §11.2.2: trailing zero bits dropped)', () => {
  // digitalSignature is bit 0: one bit used, 7 unused
  assert.equal(keyUsage(KeyUsageFlags.digitalSignature).toString('hex'), hex('300e 0603551d0f 0101ff 0404 03020780'));
  // keyCertSign (bit 5) + cRLSign (bit 6) = 0000 0110: 7 bits used, 1 unused
  assert.equal(keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign).toString('hex'), hex('300e 0603551d0f 0101ff 0404 03020106'));
});

test('SANs: iPAddress [7] of 16 or 4 bytes, dNSName [2], not critical', () => {
  assert.equal(subjectAltName(['::1']).toString('hex'), hex('301b 0603551d11 0414 3012 8710' + '00'.repeat(15) + '01'));
  assert.equal(subjectAltName(['192.0.2.1', 'ca']).toString('hex'), hex('3013 0603551d11 040c 300a 8704c0000201 82026361'));
  assert.equal(subjectAltName(['fe80::1:2']).toString('hex'), hex('301b 0603551d11 0414 3012 8710fe80' + '00'.repeat(10) + '00010002'));
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
