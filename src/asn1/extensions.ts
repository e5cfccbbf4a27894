import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { EKU_NAMES, EXTENSION_NAMES, OID } from './oids.js';

export { KeyUsageFlags };

function ext(oid: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: oid, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** RFC 5280 §4.2.1.9: critical in CA certificates; we mark it critical everywhere. */
export function basicConstraints(ca: boolean): Extension {
  return ext(OID.basicConstraints, true, new BasicConstraints({ cA: ca }));
}

/** RFC 5280 §4.2.1.3: conforming CAs SHOULD mark this extension critical. */
export function keyUsage(flags: number): Extension {
  return ext(OID.keyUsage, true, new KeyUsage(flags));
}

export function extKeyUsage(...purposes: string[]): Extension {
  return ext(OID.extKeyUsage, false, new ExtendedKeyUsage(purposes));
}

/**
 * RFC 5280 §4.2.1.2 method (1): the SHA-1 of the subjectPublicKey BIT STRING's value
 * (excluding tag, length and unused-bits count).
 */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const info = AsnConvert.parse(spki, SubjectPublicKeyInfo);
  return createHash('sha1').update(new Uint8Array(info.subjectPublicKey)).digest();
}

export function subjectKeyIdentifier(keyId: Uint8Array): Extension {
  return ext(OID.subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId));
}

/** RFC 5280 §4.2.1.1: the issuer's SKI, so paths can be built; absent on a self-signed root. */
export function authorityKeyIdentifier(issuerKeyId: Uint8Array): Extension {
  return ext(OID.authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(issuerKeyId) }));
}

/** SAN entries: an IP address literal becomes an iPAddress, anything else a dNSName. */
export function subjectAltName(names: readonly string[]): Extension {
  const general = names.map((n) => (isIP(n) ? new GeneralName({ iPAddress: n }) : new GeneralName({ dNSName: n })));
  return ext(OID.subjectAltName, false, new SubjectAlternativeName(general));
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
