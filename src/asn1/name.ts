import type { Name } from '@peculiar/asn1-x509';
import { content, decodeOid, decodeString, DerReader, oid, sequence, set, TAG, tlv, type Tlv } from './der.js';
import { LitebootError } from '../errors.js';
import { ATTRIBUTE_SHORT_NAMES, OID } from './oids.js';

/** One attribute of a distinguished name: an OID and its string value. */
export interface NameAttribute {
  readonly type: string;
  readonly value: string;
}

/** A distinguished name in encoding order, one attribute per RDN (RFC 5280 §4.1.2.4). */
export type DistinguishedName = readonly NameAttribute[];

const SHORT_TO_OID: Record<string, string> = Object.fromEntries(
  Object.entries(ATTRIBUTE_SHORT_NAMES).map(([oid, short]) => [short.toUpperCase(), oid]),
);

/** `dn({O: 'Linaro, LTD', CN: 'x'})` in the order the keys are given. */
export function dn(parts: Record<string, string | undefined>): DistinguishedName {
  const out: NameAttribute[] = [];
  for (const [short, value] of Object.entries(parts)) {
    if (value === undefined) continue;
    const type = SHORT_TO_OID[short.toUpperCase()];
    if (!type) throw new LitebootError('BAD_SUBJECT', `unknown name attribute ${short}`);
    out.push({ type, value });
  }
  return out;
}

// X.680 §41.4 PrintableString characters. Like Go's crypto/x509, use PrintableString where the
// value allows it (CountryName must be one, RFC 5280 Appendix A) and UTF8String otherwise.
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** DER of a Name: one AttributeTypeAndValue per RDN, in the given order. */
export function encodeName(name: DistinguishedName): Buffer {
  return sequence(
    ...name.map((a) => {
      if (a.value.length === 0) throw new LitebootError('BAD_SUBJECT', `empty value for ${shortName(a.type)}`);
      const tag = PRINTABLE.test(a.value) || a.type === OID.countryName ? TAG.PRINTABLE_STRING : TAG.UTF8_STRING;
      return set(sequence(oid(a.type), tlv(tag, Buffer.from(a.value, 'utf8'))));
    }),
  );
}

/** Reads a DER Name (the TLV `t` in `buf`), flattening multi-valued RDNs in order. */
export function decodeName(buf: Uint8Array, t: Tlv, what: string): NameAttribute[] {
  const out: NameAttribute[] = [];
  const rdns = DerReader.of(buf, t, what);
  while (!rdns.done) {
    const members = DerReader.of(buf, rdns.next(TAG.SET), what);
    while (!members.done) {
      const atv = DerReader.of(buf, members.next(TAG.SEQUENCE), what);
      const type = decodeOid(content(buf, atv.next(TAG.OID)), what);
      const v = atv.next();
      atv.end();
      out.push({ type, value: decodeString(v.tag, content(buf, v), what) });
    }
  }
  return out;
}

/** Flattens a parsed Name; multi-valued RDNs keep their members in order. */
export function fromAsnName(name: Name): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of name) {
    for (const atv of rdn) out.push({ type: atv.type, value: atv.value.toString() });
  }
  return out;
}

export function shortName(oid: string): string {
  return ATTRIBUTE_SHORT_NAMES[oid] ?? oid;
}

/** RFC 4514 escaping of one attribute value. */
function escapeValue(v: string): string {
  let s = v.replace(/[\\,+"<>;=]/g, (c) => '\\' + c);
  if (s.startsWith(' ') || s.startsWith('#')) s = '\\' + s;
  if (s.endsWith(' ') && s.length > 1) s = s.slice(0, -1) + '\\ ';
  return s;
}

/**
 * RFC 4514 string form, most specific first, as Go's pkix.Name.String() prints it (the
 * original's mTLS log): `CN=x,OU=Signing,O=Linaro\, LTD`.
 */
export function formatName(name: DistinguishedName): string {
  return [...name].reverse().map((a) => `${shortName(a.type)}=${escapeValue(a.value)}`).join(',');
}
