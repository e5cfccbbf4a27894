import { LitebootError } from '../errors.js';

/**
 * A small DER writer and a strict DER reader (X.690 §8, §10). Issuance runs thousands of times
 * a second, and the schema-driven encoder costs several hundred microseconds a certificate;
 * building the few fixed structures by hand costs a few. The @peculiar schemas still parse
 * everything that is not on that path (inspect, CA loading) and cross-check these bytes in tests.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------------------------------------
// Writer

function lengthBytes(len: number): number[] {
  if (len < 0x80) return [len];
  const out: number[] = [];
  for (let n = len; n > 0; n = Math.floor(n / 256)) out.unshift(n & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV with a low tag number; `content` is concatenated. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of content) len += c.length;
  const head = lengthBytes(len);
  const out = Buffer.allocUnsafe(1 + head.length + len);
  out[0] = tag;
  for (let i = 0; i < head.length; i++) out[1 + i] = head[i]!;
  let off = 1 + head.length;
  for (const c of content) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export const sequence = (...content: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...content);
export const set = (...content: Uint8Array[]): Buffer => tlv(TAG.SET, ...content);
/**
 * SET OF in DER order (X.690 §11.6): the encodings ascending as octet strings, the shorter
 * padded with trailing zero octets (`set` keeps the order given: for SETs of one member).
 */
export function setOf(members: readonly Uint8Array[]): Buffer {
  return set(...[...members].sort(compareDer));
}

function compareDer(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  const longer = a.length > b.length ? a : b;
  for (let i = n; i < longer.length; i++) if (longer[i] !== 0) return longer === a ? 1 : -1;
  return 0;
}
export const octetString = (b: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, b);
/** A BIT STRING with no unused bits (signatures, public keys). */
export const bitString = (b: Uint8Array): Buffer => tlv(TAG.BIT_STRING, Buffer.from([0]), b);
export const contextConstructed = (n: number, ...content: Uint8Array[]): Buffer => tlv(0xa0 | n, ...content);
export const NULL = Buffer.from([TAG.NULL, 0]);

/** INTEGER for a non-negative bigint: minimal two's complement (X.690 §8.3). */
export function integer(v: bigint): Buffer {
  if (v < 0n) throw new LitebootError('BAD_DER', 'negative INTEGER not supported');
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = '00' + hex;
  return tlv(TAG.INTEGER, Buffer.from(hex, 'hex'));
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER (X.690 §8.19), cached: the same few OIDs recur in every certificate. */
export function oid(dotted: string): Buffer {
  let enc = oidCache.get(dotted);
  if (enc) return enc;
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new LitebootError('BAD_DER', `bad OID ${dotted}`);
    return BigInt(a);
  });
  if (arcs.length < 2) throw new LitebootError('BAD_DER', `bad OID ${dotted}`);
  const bytes: number[] = [];
  const push = (v: bigint) => {
    const groups: number[] = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    bytes.push(...groups);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  enc = tlv(TAG.OID, Buffer.from(bytes));
  oidCache.set(dotted, enc);
  return enc;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, always Z. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y <= 2049) return tlv(TAG.UTC_TIME, Buffer.from(`${pad2(y % 100)}${rest}`, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'latin1'));
}

// ---------------------------------------------------------------------------------------------
// Reader

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

function bad(what: string, why: string): LitebootError {
  return new LitebootError('BAD_DER', `${what} is not valid DER: ${why}`);
}

/**
 * Reads the TLV at `off` inside `buf[..limit]`. Strict DER: single-byte tags, definite and
 * minimal lengths; anything running past `limit` is truncated input.
 */
export function readTlv(buf: Uint8Array, off: number, limit: number, what: string): Tlv {
  if (off + 2 > limit) throw bad(what, 'truncated');
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) throw bad(what, 'multi-byte tags are not used here');
  const first = buf[off + 1]!;
  let len: number;
  let contentStart: number;
  if (first < 0x80) {
    len = first;
    contentStart = off + 2;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw bad(what, 'indefinite length');
    if (n > 4) throw bad(what, 'length too large');
    if (off + 2 + n > limit) throw bad(what, 'truncated');
    if (buf[off + 2] === 0) throw bad(what, 'non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i]!;
    if (len < 0x80) throw bad(what, 'non-minimal length');
    contentStart = off + 2 + n;
  }
  const end = contentStart + len;
  if (end > limit) throw bad(what, 'truncated');
  return { tag, start: off, contentStart, end };
}

/** Reads the children of a constructed TLV in order. */
export class DerReader {
  private off: number;

  constructor(
    readonly buf: Uint8Array,
    private readonly what: string,
    start = 0,
    private readonly limit = buf.length,
  ) {
    this.off = start;
  }

  static of(buf: Uint8Array, t: Tlv, what: string): DerReader {
    return new DerReader(buf, what, t.contentStart, t.end);
  }

  get done(): boolean {
    return this.off >= this.limit;
  }

  next(expectedTag?: number): Tlv {
    const t = readTlv(this.buf, this.off, this.limit, this.what);
    if (expectedTag !== undefined && t.tag !== expectedTag) {
      throw bad(this.what, `expected tag 0x${expectedTag.toString(16)}, found 0x${t.tag.toString(16)}`);
    }
    this.off = t.end;
    return t;
  }

  end(): void {
    if (!this.done) throw bad(this.what, 'unexpected trailing data');
  }
}

export function content(buf: Uint8Array, t: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + t.contentStart, t.end - t.contentStart);
}

export function raw(buf: Uint8Array, t: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);
}

/**
 * The longest OBJECT IDENTIFIER read (content octets). Real ones are under 40 (a UUID arc under
 * 2.25 takes 20); without a bound, one CSR with a 16 KB attribute type cost the event loop ~50 ms
 * to decode (BigInt arcs grow with the input), before any other check could refuse it.
 */
export const MAX_OID_OCTETS = 64;

/** Decodes an OBJECT IDENTIFIER's content to dotted form. */
export function decodeOid(c: Uint8Array, what: string): string {
  if (c.length === 0) throw bad(what, 'empty OID');
  if (c.length > MAX_OID_OCTETS) throw bad(what, `an OBJECT IDENTIFIER longer than ${MAX_OID_OCTETS} octets`);
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (v === 0n && b === 0x80) throw bad(what, 'non-minimal OID arc');
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    } else if (i === c.length - 1) {
      throw bad(what, 'truncated OID');
    }
  }
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** The text of a directory string (RFC 5280 §4.1.2.4 and the types CSRs use in practice). */
export function decodeString(tag: number, c: Buffer, what: string): string {
  switch (tag) {
    case TAG.UTF8_STRING:
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
      return c.toString('utf8');
    case TAG.T61_STRING:
      return c.toString('latin1');
    case TAG.BMP_STRING: {
      if (c.length % 2) throw bad(what, 'odd BMPString');
      const swapped = Buffer.from(c);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case TAG.UNIVERSAL_STRING: {
      if (c.length % 4) throw bad(what, 'bad UniversalString');
      let s = '';
      for (let i = 0; i < c.length; i += 4) s += String.fromCodePoint(c.readUInt32BE(i));
      return s;
    }
    default:
      throw bad(what, `tag 0x${tag.toString(16)} is not a string type`);
  }
}
