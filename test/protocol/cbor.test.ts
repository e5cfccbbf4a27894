import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCbor } from '../../src/protocol/cbor.js';
import { decodeRevokeRequest } from '../../src/protocol/messages.js';

test('CBOR bignums (tags 2 and 3) are refused: no request carries one, and a large one costs quadratic time', () => {
  // {1: 2(h'05')}: a krr whose serial is a bignum
  assert.equal(decodeRevokeRequest('cbor', Buffer.from('a101c24105', 'hex')), undefined);
  assert.equal(decodeCbor(Buffer.from('c24105', 'hex')), undefined);
  assert.equal(decodeCbor(Buffer.from('c34105', 'hex')), undefined);
  const n = 16_000;
  assert.equal(decodeCbor(Buffer.concat([Buffer.from([0x81, 0xc2, 0x59, n >> 8, n & 0xff]), Buffer.alloc(n, 0xff)])), undefined);
  // The same request with a plain integer still decodes.
  assert.deepEqual(decodeRevokeRequest('cbor', Buffer.from('a20105020a', 'hex')), { serial: 5n, reason: 10 });
  assert.deepEqual(decodeRevokeRequest('cbor', Buffer.from('a2011b18ebafce4f8f63bf0201', 'hex')), { serial: 1795722177070195647n, reason: 1 });
});
