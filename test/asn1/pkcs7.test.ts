import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { oid, setOf } from '../../src/asn1/der.js';
import { OID } from '../../src/asn1/oids.js';
import { certsOnly, parseCertsOnly } from '../../src/asn1/pkcs7.js';
import { openssl, tempDir } from '../helpers/run.js';

describe('certs-only PKCS#7 (RFC 5652 SignedData) against openssl crl2pkcs7', () => {
  const t = tempDir('liteboot-pkcs7-');
  const files: string[] = [];
  const ders: Buffer[] = [];
  const p7 = (...certFiles: string[]): Buffer => {
    const joined = join(t.dir, `chain-${certFiles.map((f) => files.indexOf(f)).join('')}.crt`);
    const pem = certFiles.map((f) => readFileSync(f, 'utf8')).join('');
    ok(openssl(['crl2pkcs7', '-nocrl', '-certfile', writeText(joined, pem), '-outform', 'DER', '-out', `${joined}.p7`]));
    return readFileSync(`${joined}.p7`);
  };
  before(() => {
    const specs = [['ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']], ['rsa', ['-newkey', 'rsa:2048']], ['ec2', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']]] as const;
    for (const [name, key] of specs) {
      const f = join(t.dir, `${name}.crt`);
      ok(openssl(['req', '-x509', ...key, '-nodes', '-keyout', join(t.dir, `${name}.key`), '-subj', `/CN=${name}`, '-days', '1', '-out', f]));
      files.push(f);
      ders.push(openssl(['x509', '-in', f, '-outform', 'DER']).out);
    }
  });
  after(() => t.cleanup());

  test('one certificate: byte for byte what openssl makes', () => {
    for (let i = 0; i < files.length; i++) assert.equal(certsOnly([ders[i]!]).toString('hex'), p7(files[i]!).toString('hex'));
  });

  test('several: DER SET OF order (X.690 §11.6), which is openssl\'s output for input in that order', () => {
    const sorted = [0, 1, 2].sort((a, b) => Buffer.compare(ders[a]!, ders[b]!));
    const expected = p7(...sorted.map((i) => files[i]!));
    // openssl keeps the order of its input file; DER sorts: every input order gives the same bytes.
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]]) {
      assert.equal(certsOnly(order.map((i) => ders[i]!)).toString('hex'), expected.toString('hex'), `input order ${order}`);
    }
    assert.deepEqual(parseCertsOnly(expected), sorted.map((i) => ders[i]!));
  });

  test('openssl reads what we make', () => {
    const f = join(t.dir, 'ours.p7');
    writeText(f, certsOnly(ders));
    const r = openssl(['pkcs7', '-inform', 'DER', '-in', f, '-print_certs', '-noout']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.match(/subject=CN = \w+/g)!.sort(), ['subject=CN = ec', 'subject=CN = ec2', 'subject=CN = rsa']);
  });

  test('the reader refuses trailing bytes, another content type and truncation', () => {
    const one = certsOnly([ders[0]!]);
    assert.deepEqual(parseCertsOnly(one), [ders[0]!]);
    assert.throws(() => parseCertsOnly(Buffer.concat([one, Buffer.from([0])])), /not one DER SEQUENCE/);
    const data = Buffer.from(one);
    data[14] = 0x01; // ...7.2 -> ...7.1 (id-data)
    assert.throws(() => parseCertsOnly(data), /not a SignedData/);
    assert.deepEqual(parseCertsOnly(certsOnly([])), []);
    assert.throws(() => parseCertsOnly(one.subarray(0, one.length - 2)), /truncated/);
  });
});

test('setOf sorts its members by encoding (X.690 §11.6)', () => {
  // secp384r1 is 06 05 ..., prime256v1 06 08 ...: the shorter length octet sorts first.
  assert.equal(setOf([oid(OID.prime256v1), oid(OID.secp384r1)]).toString('hex'), '3111' + '06052b81040022' + '06082a8648ce3d030107');
  assert.equal(setOf([oid(OID.secp384r1), oid(OID.prime256v1)]).toString('hex'), '3111' + '06052b81040022' + '06082a8648ce3d030107');
});

function ok(r: { code: number; stderr: string }): void {
  assert.equal(r.code, 0, r.stderr);
}

function writeText(f: string, data: string | Buffer): string {
  writeFileSync(f, data);
  return f;
}
