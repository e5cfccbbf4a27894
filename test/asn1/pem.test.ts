import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePemBlocks, parsePemOne, toPem } from '../../src/asn1/pem.js';
import { openssl } from '../helpers/run.js';

test('PEM: 64-column base64 lines, \\n line ends, round trip', () => {
  const der = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
  const pem = toPem('CERTIFICATE', der);
  const lines = pem.split('\n');
  assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
  assert.ok(lines.slice(1, -2).every((l) => l.length <= 64));
  assert.equal(lines[1]!.length, 64);
  assert.ok(pem.endsWith('-----END CERTIFICATE-----\n'));
  assert.deepEqual(parsePemOne(pem, 'CERTIFICATE', 'x'), der);
  // openssl's base64 encoder also wraps at 64 columns (RFC 7468 §2): the body must be its output exactly
  const b64 = openssl(['base64', '-e'], { input: der });
  assert.equal(b64.code, 0, b64.stderr);
  assert.equal(pem, `-----BEGIN CERTIFICATE-----\n${b64.stdout}-----END CERTIFICATE-----\n`);
});

test('PEM: several blocks, CRLF line ends, and clear errors', () => {
  const two = toPem('EC PARAMETERS', Buffer.from([6, 8])).replace(/\n/g, '\r\n') + toPem('EC PRIVATE KEY', Buffer.from([1, 2, 3]));
  assert.deepEqual(parsePemBlocks(two).map((b) => `${b.label}:${b.der.toString('hex')}`), ['EC PARAMETERS:0608', 'EC PRIVATE KEY:010203']);
  assert.throws(() => parsePemOne('nothing here', 'CERTIFICATE', 'x'), /no "-----BEGIN CERTIFICATE-----" block/);
  assert.throws(() => parsePemBlocks('-----BEGIN X-----\n!!!!\n-----END X-----\n'), /valid base64/);
});
