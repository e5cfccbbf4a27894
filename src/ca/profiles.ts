import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  extKeyUsage,
  keyIdentifier,
  keyUsage,
  KeyUsageFlags,
  ocspNoCheck,
  subjectAltName,
  subjectKeyIdentifier,
} from '../asn1/extensions.js';
import { buildCertificate } from '../asn1/certificate.js';
import { dn, type DistinguishedName } from '../asn1/name.js';
import { OID } from '../asn1/oids.js';
import type { Signer } from '../asn1/signer.js';
import { LitebootError } from '../errors.js';

/**
 * The certificate profiles liteboot issues. Each is a pure function: the same inputs give the
 * same DER, so tests compare bytes and openssl judges the result.
 */

export const DEFAULT_ORG = 'Linaro, LTD';
export const BOOTSTRAP_CN = 'bootstrap-register-1';
export const BOOTSTRAP_OU = 'LinaroCA Bootstrap Cert';
export const OPERATOR_OU = 'LinaroCA Operator Cert';
export const DAY_MS = 86_400_000;

/** The CA as an issuer: its certificate's subject bytes, validity end, key id and signer. */
export interface Issuer {
  /** DER of the CA certificate's subject, copied verbatim into each issued certificate. */
  subjectDer: Uint8Array;
  notAfter: Date;
  keyId: Uint8Array;
  /** The CA's SubjectPublicKeyInfo, for OCSP CertID matching (RFC 6960 §4.1.1). */
  spki: Uint8Array;
  signer: Signer;
}

interface Common {
  serial: bigint;
  publicKey: Uint8Array;
  notBefore: Date;
  days: number;
  /** The subject key identifier, when the caller already has it (else derived from publicKey). */
  keyId?: Uint8Array;
}

/** `LRC - YYYYMMDDHHMMSS` on a 24-hour UTC clock (the original printed a 12-hour clock). */
export function defaultCaCommonName(now: Date): string {
  const s = now.toISOString(); // 2026-11-26T19:42:54.000Z
  return `LRC - ${s.slice(0, 4)}${s.slice(5, 7)}${s.slice(8, 10)}${s.slice(11, 13)}${s.slice(14, 16)}${s.slice(17, 19)}`;
}

/** End of validity: `days` after `notBefore`, never beyond `cap` (the CA's own end). */
export function validityEnd(notBefore: Date, days: number, cap?: Date): Date {
  if (!Number.isInteger(days) || days < 1) throw new LitebootError('USAGE', `validity must be a whole number of days >= 1, not ${days}`);
  const end = new Date(notBefore.getTime() + days * DAY_MS);
  if (!cap) return end;
  if (cap.getTime() <= notBefore.getTime()) {
    throw new LitebootError('CA_EXPIRED', `the CA certificate expired on ${cap.toISOString()}; it can no longer issue certificates`);
  }
  // Never valid beyond the CA: a chain is only as long-lived as its issuer.
  return end.getTime() > cap.getTime() ? cap : end;
}

async function issued(issuer: Issuer, subject: DistinguishedName | Uint8Array, c: Common, exts: readonly Uint8Array[]): Promise<Buffer> {
  return buildCertificate(
    {
      serial: c.serial,
      issuer: issuer.subjectDer,
      subject,
      notBefore: c.notBefore,
      notAfter: validityEnd(c.notBefore, c.days, issuer.notAfter),
      publicKey: c.publicKey,
      extensions: [...exts, subjectKeyIdentifier(c.keyId ?? keyIdentifier(c.publicKey)), authorityKeyIdentifier(issuer.keyId)],
    },
    issuer.signer,
  );
}

/** Self-signed root: CA:TRUE and keyCertSign + cRLSign, both critical; SKI, no AKI. */
export async function caCertificate(o: Common & { subject: DistinguishedName; signer: Signer }): Promise<Buffer> {
  return buildCertificate(
    {
      serial: o.serial,
      issuer: o.subject,
      subject: o.subject,
      notBefore: o.notBefore,
      notAfter: validityEnd(o.notBefore, o.days),
      publicKey: o.publicKey,
      extensions: [
        basicConstraints(true),
        keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign),
        subjectKeyIdentifier(keyIdentifier(o.publicKey)),
      ],
    },
    o.signer,
  );
}

/** TLS server: SAN with the hostname (IP SAN for an address) and any extra names. */
export function serverCertificate(issuer: Issuer, o: Common & { hostname: string; sans?: readonly string[]; org?: string }): Promise<Buffer> {
  const names = [o.hostname, ...(o.sans ?? [])].filter((n, i, all) => all.indexOf(n) === i);
  return issued(issuer, dn({ O: o.org ?? DEFAULT_ORG, CN: o.hostname }), o, [
    basicConstraints(false),
    keyUsage(KeyUsageFlags.digitalSignature),
    extKeyUsage(OID.serverAuth),
    subjectAltName(names),
  ]);
}

function clientProfile(issuer: Issuer, subject: DistinguishedName, o: Common): Promise<Buffer> {
  return issued(issuer, subject, o, [
    basicConstraints(false),
    keyUsage(KeyUsageFlags.digitalSignature),
    extKeyUsage(OID.clientAuth),
  ]);
}

/** The shared factory credential that opens the enrolment endpoints. */
export function bootstrapCertificate(issuer: Issuer, o: Common & { cn?: string }): Promise<Buffer> {
  return clientProfile(issuer, dn({ O: DEFAULT_ORG, CN: o.cn ?? BOOTSTRAP_CN, OU: BOOTSTRAP_OU }), o);
}

/** An operator's credential: may enrol, read and revoke anything. */
export function operatorCertificate(issuer: Issuer, o: Common & { cn: string }): Promise<Buffer> {
  return clientProfile(issuer, dn({ O: DEFAULT_ORG, CN: o.cn, OU: OPERATOR_OU }), o);
}

/**
 * A device certificate: the subject from the CSR, nothing else from it (requested extensions
 * are ignored: the CA decides usage, API.md improvement 3).
 */
export function deviceCertificate(issuer: Issuer, o: Common & { subject: DistinguishedName; revocationInfo?: readonly Uint8Array[] }): Promise<Buffer> {
  return issued(issuer, o.subject, o, [
    basicConstraints(false),
    keyUsage(KeyUsageFlags.digitalSignature),
    extKeyUsage(OID.clientAuth),
    ...(o.revocationInfo ?? []),
  ]);
}

/** CN of the delegated OCSP responder. */
export const OCSP_RESPONDER_CN = 'liteboot OCSP responder';

/**
 * A delegated OCSP responder (RFC 6960 §4.2.2.2): EKU id-kp-OCSPSigning, issued by the CA, with
 * id-pkix-ocsp-nocheck (§4.2.2.2.1), so it should be short-lived: it cannot usefully be revoked.
 */
export function ocspResponderCertificate(issuer: Issuer, o: Common & { org?: string }): Promise<Buffer> {
  return issued(issuer, dn({ O: o.org ?? DEFAULT_ORG, CN: OCSP_RESPONDER_CN }), o, [
    basicConstraints(false),
    keyUsage(KeyUsageFlags.digitalSignature),
    extKeyUsage(OID.ocspSigning),
    ocspNoCheck(),
  ]);
}

/**
 * Where relying parties find out about revocation (the issue: CRL, OCSP, URLs in the
 * certificates): a CRL distribution point and the OCSP and caIssuers URLs under `publicUrl`.
 */
export function revocationInfo(publicUrl: string): Uint8Array[] {
  const base = publicUrl.replace(/\/+$/, '');
  return [crlDistributionPoints(`${base}/crl`), authorityInfoAccess(`${base}/ocsp`, `${base}/ca.crt`)];
}
