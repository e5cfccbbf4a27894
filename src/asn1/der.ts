import { LitebootError } from '../errors.js';

/**
 * Checks that `bytes` is exactly one DER SEQUENCE with a definite length and nothing after it
 * (X.690 §10.1: DER uses the definite form). The ASN.1 parser underneath is BER-lenient and
 * ignores trailing bytes, so the outer frame is checked here before anything is trusted.
 */
export function assertSingleSequence(bytes: Uint8Array, what: string): void {
  if (bytes.length < 2 || bytes[0] !== 0x30) {
    throw new LitebootError('BAD_DER', `${what} is not DER: it does not start with a SEQUENCE`);
  }
  const first = bytes[1]!;
  let len: number;
  let header: number;
  if (first < 0x80) {
    len = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new LitebootError('BAD_DER', `${what} is not DER: bad length field`);
    if (bytes.length < 2 + n) throw new LitebootError('BAD_DER', `${what} is truncated`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[2 + i]!;
    header = 2 + n;
  }
  if (header + len > bytes.length) throw new LitebootError('BAD_DER', `${what} is truncated`);
  if (header + len < bytes.length) throw new LitebootError('BAD_DER', `${what} has ${bytes.length - header - len} bytes of trailing data`);
}
