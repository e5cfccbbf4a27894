import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32, crc32Table } from '../../src/store/crc32.js';

test('CRC-32: the check value of the zlib polynomial, and the same from both implementations', () => {
  const check = Buffer.from('123456789');
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Table(check), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  for (let n = 0; n < 200; n++) {
    const data = randomBytes(n * 7);
    assert.equal(crc32(data), crc32Table(data), `length ${data.length}`);
  }
});
