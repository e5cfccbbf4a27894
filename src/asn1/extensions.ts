import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { DerReader, octetString, oid, readTlv, sequence, TAG, tlv } from './der.js';
import { EKU_NAMES, EXTENSION_NAMES, OID } from './oids.js';

export { KeyUsageFlags };

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
function ext(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(oid(id), TRUE, octetString(value)) : sequence(oid(id), octetString(value));
}
const TRUE = Buffer.from([TAG.BOOLEAN, 1, 0xff]);

/** RFC 5280 §4.2.1.9: critical in CA certificates; we mark it critical everywhere. cA FALSE is the DEFAULT, so omitted. */
export function basicConstraints(ca: boolean): Buffer {
  return ext(OID.basicConstraints, true, ca ? sequence(TRUE) : sequence());
}

/** RFC 5280 §4.2.1.3, a named-bit BIT STRING (X.690 §11.2.2: no trailing zero bits); critical. */
export function keyUsage(flags: number): Buffer {
  if (flags <= 0 || flags >= 512) throw new RangeError('key usage flags out of range');
  const highest = 31 - Math.clz32(flags);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (let bit = 0; bit <= highest; bit++) if (flags & (1 << bit)) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return ext(OID.keyUsage, true, tlv(TAG.BIT_STRING, Buffer.from([7 - (highest & 7)]), bytes));
}

export function extKeyUsage(...purposes: string[]): Buffer {
  return ext(OID.extKeyUsage, false, sequence(...purposes.map(oid)));
}

/**
 * RFC 5280 §4.2.1.2 method (1): the SHA-1 of the subjectPublicKey BIT STRING's value
 * (excluding tag, length and unused-bits count).
 */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const outer = readTlv(spki, 0, spki.length, 'the public key');
  const r = DerReader.of(spki, outer, 'the public key');
  r.next(TAG.SEQUENCE);
  const bits = r.next(TAG.BIT_STRING);
  return createHash('sha1').update(spki.subarray(bits.contentStart + 1, bits.end)).digest();
}

export function subjectKeyIdentifier(keyId: Uint8Array): Buffer {
  return ext(OID.subjectKeyIdentifier, false, octetString(keyId));
}

/** RFC 5280 §4.2.1.1: the issuer's SKI as keyIdentifier [0], so paths can be built; absent on a self-signed root. */
export function authorityKeyIdentifier(issuerKeyId: Uint8Array): Buffer {
  return ext(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, issuerKeyId)));
}

/** RFC 5280 §4.2.2.1 id-pe-authorityInfoAccess and its access methods (id-ad-ocsp, id-ad-caIssuers). */
const AIA = '1.3.6.1.5.5.7.1.1';
const AD_OCSP = '1.3.6.1.5.5.7.48.1';
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';
/** GeneralName uniformResourceIdentifier [6] IA5String. */
const uri = (url: string): Buffer => tlv(0x86, Buffer.from(url, 'ascii'));

/** RFC 5280 §4.2.1.13: one DistributionPoint whose fullName is the CRL's URL. */
export function crlDistributionPoints(url: string): Buffer {
  return ext(OID.cRLDistributionPoints, false, sequence(sequence(tlv(0xa0, tlv(0xa0, uri(url))))));
}

/** RFC 5280 §4.2.2.1: where the OCSP responder and the issuer's certificate are. */
export function authorityInfoAccess(ocspUrl: string, caIssuersUrl: string): Buffer {
  return ext(AIA, false, sequence(sequence(oid(AD_OCSP), uri(ocspUrl)), sequence(oid(AD_CA_ISSUERS), uri(caIssuersUrl))));
}

/** RFC 6960 §4.2.2.2.1 id-pkix-ocsp-nocheck: a delegated responder's own status need not be checked. */
export function ocspNoCheck(): Buffer {
  return ext(OID.ocspNoCheck, false, Buffer.from([TAG.NULL, 0]));
}

/** SAN entries: an IP address literal becomes an iPAddress [7], anything else a dNSName [2]. */
export function subjectAltName(names: readonly string[]): Buffer {
  return ext(
    OID.subjectAltName,
    false,
    sequence(...names.map((n) => (isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii'))))),
  );
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand IPv6 (with :: and an optional dotted IPv4 tail) to 16 bytes.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** A readable account of one extension, for `inspect` and tests. */
export interface ExtensionSummary {
  oid: string;
  name: string;
  critical: boolean;
  /** Human-readable value, e.g. `CA:FALSE`, `digitalSignature, keyCertSign`, `DNS:localhost`. */
  value: string;
}

const KEY_USAGE_NAMES: [number, string][] = [
  [KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [KeyUsageFlags.cRLSign, 'cRLSign'],
  [KeyUsageFlags.encipherOnly, 'encipherOnly'],
  [KeyUsageFlags.decipherOnly, 'decipherOnly'],
];

function hexColon(b: Uint8Array): string {
  return Buffer.from(b).toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

function describeGeneralName(g: GeneralName): string {
  if (g.dNSName !== undefined) return `DNS:${g.dNSName}`;
  if (g.iPAddress !== undefined) return `IP:${g.iPAddress}`;
  if (g.rfc822Name !== undefined) return `email:${g.rfc822Name}`;
  if (g.uniformResourceIdentifier !== undefined) return `URI:${g.uniformResourceIdentifier}`;
  return 'othername';
}

export function summarizeExtension(e: Extension): ExtensionSummary {
  const raw = new Uint8Array(e.extnValue.buffer);
  const base = { oid: e.extnID, name: EXTENSION_NAMES[e.extnID] ?? e.extnID, critical: e.critical };
  try {
    switch (e.extnID) {
      case OID.basicConstraints: {
        const bc = AsnConvert.parse(raw, BasicConstraints);
        const len = bc.pathLenConstraint !== undefined ? `, pathlen:${bc.pathLenConstraint}` : '';
        return { ...base, value: `CA:${bc.cA ? 'TRUE' : 'FALSE'}${len}` };
      }
      case OID.keyUsage: {
        const ku = AsnConvert.parse(raw, KeyUsage);
        const flags = ku.toNumber();
        return { ...base, value: KEY_USAGE_NAMES.filter(([f]) => flags & f).map(([, n]) => n).join(', ') };
      }
      case OID.extKeyUsage: {
        const eku = AsnConvert.parse(raw, ExtendedKeyUsage);
        return { ...base, value: [...eku].map((o) => EKU_NAMES[o] ?? o).join(', ') };
      }
      case OID.subjectKeyIdentifier:
        return { ...base, value: hexColon(new Uint8Array(AsnConvert.parse(raw, SubjectKeyIdentifier).buffer)) };
      case OID.authorityKeyIdentifier: {
        const aki = AsnConvert.parse(raw, AuthorityKeyIdentifier);
        return { ...base, value: aki.keyIdentifier ? hexColon(new Uint8Array(aki.keyIdentifier.buffer)) : '(no key identifier)' };
      }
      case OID.subjectAltName:
        return { ...base, value: [...AsnConvert.parse(raw, SubjectAlternativeName)].map(describeGeneralName).join(', ') };
      default:
        return { ...base, value: Buffer.from(raw).toString('hex') };
    }
  } catch {
    return { ...base, value: `(malformed) ${Buffer.from(raw).toString('hex')}` };
  }
}
