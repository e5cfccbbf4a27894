import { addExtension, Decoder } from 'cbor-x';

/**
 * CBOR for the wire (RFC 8949). Responses are encoded here by hand so that every byte is the
 * contract's: definite lengths, shortest heads (§4.2.1), integer keys in ascending order,
 * unsigned integers as major type 0 (uint64 `1b` when needed, never a float or a bignum).
 * Requests are decoded with cbor-x.
 */
export type CborValue = number | bigint | Uint8Array | string | null | CborValue[] | CborMap;
export type CborMap = { readonly entries: readonly (readonly [number | string, CborValue])[] };

export function cborMap(...entries: (readonly [number | string, CborValue])[]): CborMap {
  return { entries };
}

function head(major: number, n: number | bigint): Buffer {
  const v = BigInt(n);
  if (v < 0n || v >= 1n << 64n) throw new RangeError('CBOR head out of range');
  const m = major << 5;
  if (v < 24n) return Buffer.from([m | Number(v)]);
  if (v < 0x100n) return Buffer.from([m | 24, Number(v)]);
  if (v < 0x10000n) {
    const b = Buffer.allocUnsafe(3);
    b[0] = m | 25;
    b.writeUInt16BE(Number(v), 1);
    return b;
  }
  if (v < 0x100000000n) {
    const b = Buffer.allocUnsafe(5);
    b[0] = m | 26;
    b.writeUInt32BE(Number(v), 1);
    return b;
  }
  const b = Buffer.allocUnsafe(9);
  b[0] = m | 27;
  b.writeBigUInt64BE(v, 1);
  return b;
}

function encodeInto(v: CborValue, out: Buffer[]): void {
  if (v === null) out.push(Buffer.from([0xf6]));
  else if (typeof v === 'number' || typeof v === 'bigint') {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError('only integers are encoded');
    out.push(head(0, v));
  } else if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    out.push(head(3, b.length), b);
  } else if (v instanceof Uint8Array) {
    out.push(head(2, v.length), Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  } else if (Array.isArray(v)) {
    out.push(head(4, v.length));
    for (const x of v) encodeInto(x, out);
  } else {
    const m = v as CborMap;
    out.push(head(5, m.entries.length));
    for (const [k, x] of m.entries) {
      encodeInto(k, out);
      encodeInto(x, out);
    }
  }
}

export function encodeCbor(v: CborValue): Buffer {
  const parts: Buffer[] = [];
  encodeInto(v, parts);
  return Buffer.concat(parts);
}

/**
 * Bignums (tags 2 and 3) are refused: no request carries one, and cbor-x turns a 16 KB one into a
 * BigInt in quadratic time (65 ms of blocked event loop per request, found by an attack with the
 * public bootstrap key). The extension is cbor-x's global table; only this module decodes CBOR.
 */
class RefusedBignum {}
for (const tag of [2, 3]) {
  addExtension({
    Class: RefusedBignum,
    tag,
    encode() {
      throw new Error('bignums are not encoded');
    },
    decode() {
      throw new Error('bignums are refused');
    },
  });
}

// Maps stay Maps (integer keys), 64-bit integers come back as bigint, no cbor-x extensions.
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false, int64AsType: 'bigint' } as ConstructorParameters<typeof Decoder>[0]);

/**
 * Decodes one CBOR item that must fill `bytes` exactly. Returns undefined for anything that is
 * not well-formed CBOR (truncated, trailing bytes, nesting too deep, ...).
 */
export function decodeCbor(bytes: Uint8Array): { value: unknown } | undefined {
  if (bytes.length === 0) return undefined;
  try {
    return { value: decoder.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) };
  } catch {
    return undefined;
  }
}
