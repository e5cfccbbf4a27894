import { randomBytes } from 'node:crypto';

/**
 * RFC 5280 §4.1.2.2: positive, unique per CA, at most 20 octets; CA/Browser Forum BR §7.1 asks
 * for at least 64 bits from a CSPRNG. 16 random bytes with the top bit cleared give 127 bits.
 */
export function randomSerial(): bigint {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  const v = BigInt('0x' + b.toString('hex'));
  return v === 0n ? 1n : v;
}
