import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildCsr, parseCsr } from '../../src/asn1/csr.js';
import { generateKey } from '../../src/asn1/keys.js';
import { dn, formatName } from '../../src/asn1/name.js';
import { OID } from '../../src/asn1/oids.js';
import { toPem } from '../../src/asn1/pem.js';
import { openssl, tempDir } from '../helpers/run.js';

const tmp = tempDir();
after(tmp.cleanup);

const KEYS: [string, string[]][] = [
  ['P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
  ['P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
  ['RSA 2048', ['-newkey', 'rsa:2048']],
  ['Ed25519', ['-newkey', 'ed25519']],
];

function opensslCsr(name: string, keyArgs: string[], extra: string[] = []): Buffer {
  const out = join(tmp.dir, `${name.replace(/\W/g, '')}.csr`);
  const r = openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', join(tmp.dir, 'k.pem'), '-subj', '/O=Test Vendor/OU=Signing/CN=56d38f73-3f6f-4a59-86bc-d315a1ccc634', '-outform', 'DER', '-out', out, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(out);
}

for (const [name, args] of KEYS) {
  test(`an openssl-made ${name} CSR parses and its signature verifies`, async () => {
    const der = opensslCsr(name, args);
    const csr = await parseCsr(der);
    assert.equal(csr.signatureValid, true);
    assert.equal(formatName(csr.subject), 'CN=56d38f73-3f6f-4a59-86bc-d315a1ccc634,OU=Signing,O=Test Vendor');
    // the public key we read is the one openssl put in (its SubjectPublicKeyInfo, byte for byte)
    const pub = openssl(['pkey', '-in', join(tmp.dir, 'k.pem'), '-pubout', '-outform', 'DER']);
    assert.equal(pub.code, 0, pub.stderr);
    assert.deepEqual(Buffer.from(csr.spki), pub.out);
  });
}

test('a CSR with one flipped signature byte is rejected', async () => {
  const der = opensslCsr('flip', KEYS[0]![1]);
  const bad = Buffer.from(der);
  bad[bad.length - 5]! ^= 0x01; // inside the signature's INTEGER s
  assert.equal((await parseCsr(bad)).signatureValid, false);
  assert.equal((await parseCsr(der)).signatureValid, true);
});

test('a CSR whose subject was altered after signing is rejected', async () => {
  const der = opensslCsr('alter', KEYS[0]![1]);
  const bad = Buffer.from(der);
  const at = bad.indexOf(Buffer.from('Test Vendor'));
  bad[at] = 'B'.charCodeAt(0);
  assert.equal((await parseCsr(bad)).signatureValid, false);
});

test('requested extensions are read (so policy can ignore them)', async () => {
  const der = opensslCsr('exts', KEYS[0]![1], ['-addext', 'basicConstraints=critical,CA:TRUE']);
  assert.deepEqual((await parseCsr(der)).requestedExtensions, [OID.basicConstraints]);
});

test('our CSRs pass openssl req -verify', async () => {
  for (const alg of ['P-256', 'P-384'] as const) {
    const der = await buildCsr(dn({ O: 'Test Vendor', CN: 'c0ffee00-0000-4000-8000-000000000000', OU: 'Signing' }), generateKey(alg));
    const f = join(tmp.dir, `ours-${alg}.csr`);
    writeFileSync(f, toPem('CERTIFICATE REQUEST', der));
    const r = openssl(['req', '-in', f, '-verify', '-noout', '-subject']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /verify OK/i);
    assert.match(r.stdout, /CN ?= ?c0ffee00-0000-4000-8000-000000000000/);
  }
});

test('malformed input gives BAD_DER or BAD_CSR, never a crash; an unknown key type is UNSUPPORTED_KEY', async () => {
  const good = await buildCsr(dn({ CN: 'x' }), generateKey());
  const cases: [string, Buffer, string, RegExp][] = [
    ['empty', Buffer.alloc(0), 'BAD_DER', /truncated/],
    ['a lone SEQUENCE tag', Buffer.from([0x30]), 'BAD_DER', /truncated/],
    ['a length past the end', Buffer.from([0x30, 0x82, 0xff]), 'BAD_DER', /truncated/],
    ['one byte short', good.subarray(0, good.length - 1), 'BAD_DER', /truncated/],
    ['one byte of trailing data', Buffer.concat([good, Buffer.from([0])]), 'BAD_CSR', /1 bytes of trailing data/],
    ['PEM text, not DER', Buffer.from('-----BEGIN CERTIFICATE REQUEST-----'), 'BAD_DER', /not valid DER/],
    ['a SEQUENCE holding an INTEGER', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), 'BAD_DER', /expected tag 0x30, found 0x2/],
    ['an Ed448 CSR', opensslCsr('ed448', ['-newkey', 'ed448']), 'UNSUPPORTED_KEY', /1\.3\.101\.113 is not supported/],
  ];
  for (const [name, c, code, message] of cases) {
    await assert.rejects(() => parseCsr(c), (e: Error & { code?: string }) => {
      assert.equal(e.code, code, `${name}: ${e.message}`);
      assert.match(e.message, message, name);
      return true;
    });
  }
});
