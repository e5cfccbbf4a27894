import { oid, sequence, setOf } from './der.js';

/**
 * RFC 7030 §4.5.2: what a server asks for in CSRs.
 *
 *   CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
 *   AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
 *   Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE (1..MAX) OF ... }
 *
 * An OID alone names an algorithm or attribute to use; an Attribute carries values, here OIDs
 * (the key type id-ecPublicKey with the curves accepted).
 */
export type AttrOrOid = { oid: string } | { type: string; values: readonly string[] };

export function encodeCsrAttrs(items: readonly AttrOrOid[]): Buffer {
  return sequence(...items.map((i) => ('oid' in i ? oid(i.oid) : sequence(oid(i.type), setOf(i.values.map(oid))))));
}
