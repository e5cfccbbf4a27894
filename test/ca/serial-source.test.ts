import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SALT_BITS, TimestampSerials } from '../../src/ca/serial-source.js';

const SLOT = 1n << SALT_BITS;

test('serials carry the process salt in their low bits, grow strictly, stay above the floor and below 2^63', () => {
  const clock = 1_795_721_654_822_870_144n;
  let t = clock;
  const s = new TimestampSerials(clock + 5_000n, () => t, 77n);
  const seen: bigint[] = [];
  for (let i = 0; i < 50; i++) {
    if (i % 10 === 0) t += 3n; // a clock slower than the calls, and the floor above the clock
    seen.push(s.next());
  }
  assert.ok(seen[0]! > clock + 5_000n);
  for (const [i, v] of seen.entries()) {
    assert.equal(v % SLOT, 77n, `serial ${v} has the salt`);
    if (i > 0) assert.ok(v > seen[i - 1]!, 'strictly increasing');
  }
  // The clock far ahead: the serial is the clock, its low bits replaced by the salt.
  t = clock + 10_000_000n;
  assert.equal(s.next(), ((clock + 10_000_000n) & ~(SLOT - 1n)) | 77n);
  s.raiseFloor(clock + 20_000_000n);
  assert.ok(s.next() > clock + 20_000_000n);
  assert.throws(() => new TimestampSerials((1n << 63n) - 2n, () => t, 3n).next(), /2\^63/);
  assert.throws(() => new TimestampSerials(0n, () => t, SLOT), /salt/);
});

test('two servers with one clock and different salts never draw the same serial', () => {
  let t = 1_795_721_654_822_870_144n;
  const a = new TimestampSerials(0n, () => t, 1n);
  const b = new TimestampSerials(0n, () => t, 2n);
  const all = new Set<bigint>();
  for (let i = 0; i < 1000; i++) {
    if (i % 7 === 0) t += 1n;
    all.add(a.next());
    all.add(b.next());
  }
  assert.equal(all.size, 2000);
});
