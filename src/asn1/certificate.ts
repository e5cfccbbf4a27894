import { X509Certificate, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { bitString, contextConstructed, integer, sequence, TAG, time, tlv } from './der.js';
import { LitebootError } from '../errors.js';
import { summarizeExtension, type ExtensionSummary } from './extensions.js';
import { publicKeyFromSpki } from './keys.js';
import { encodeName, fromAsnName, type DistinguishedName, type NameAttribute } from './name.js';
import { algorithmDer, type Signer } from './signer.js';

/** Everything that goes into a certificate. Time and serial are inputs: same inputs, same bytes. */
export interface CertificateTemplate {
  /** RFC 5280 §4.1.2.2: a positive integer of at most 20 octets. */
  serial: bigint;
  /** The issuer's subject, as a DN or as the DER bytes of the issuer certificate's subject. */
  issuer: DistinguishedName | Uint8Array;
  subject: DistinguishedName | Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  publicKey: Uint8Array;
  /** Each the DER of one Extension (see extensions.ts). */
  extensions: readonly Uint8Array[];
}

/** RFC 5280 §4.1.2.2: serials are positive, non-zero and no longer than 20 octets. */
export function serialToDer(serial: bigint): Uint8Array {
  if (serial <= 0n) throw new LitebootError('BAD_CERT', 'a certificate serial must be positive');
  const enc = integer(serial);
  if (enc.length - 2 > 20) throw new LitebootError('BAD_CERT', 'a certificate serial may not exceed 20 octets');
  return enc.subarray(2);
}

export function serialFromDer(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let v = BigInt('0x' + Buffer.from(bytes).toString('hex'));
  if (bytes[0]! & 0x80) v -= 1n << BigInt(bytes.length * 8);
  return v;
}

const V3 = contextConstructed(0, Buffer.from([TAG.INTEGER, 1, 2])); // [0] EXPLICIT Version v3

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** Builds and signs an X.509 v3 certificate (RFC 5280 §4.1). Returns DER. */
export async function buildCertificate(t: CertificateTemplate, signer: Signer): Promise<Buffer> {
  const notBefore = wholeSeconds(t.notBefore);
  const notAfter = wholeSeconds(t.notAfter);
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new LitebootError('BAD_CERT', 'the certificate would expire before it becomes valid');
  }
  const sigAlg = algorithmDer(signer.algorithm);
  const serial = serialToDer(t.serial);
  const tbs = sequence(
    V3,
    tlv(TAG.INTEGER, serial),
    sigAlg,
    t.issuer instanceof Uint8Array ? t.issuer : encodeName(t.issuer),
    sequence(time(notBefore), time(notAfter)),
    t.subject instanceof Uint8Array ? t.subject : encodeName(t.subject),
    t.publicKey,
    ...(t.extensions.length > 0 ? [contextConstructed(3, sequence(...t.extensions))] : []),
  );
  return sequence(tbs, sigAlg, bitString(await signer.sign(tbs)));
}

/** A parsed certificate, with what liteboot reads from it. */
export interface ParsedCertificate {
  der: Buffer;
  version: number;
  serial: bigint;
  issuer: NameAttribute[];
  issuerDer: Buffer;
  subject: NameAttribute[];
  subjectDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  publicKey: KeyObject;
  signatureAlgorithm: string;
  extensions: ExtensionSummary[];
  /** Raw extensions by OID, for policy checks. */
  extensionOids: string[];
  tbs: Buffer;
  signature: Buffer;
}

export function parseCertificate(der: Uint8Array): ParsedCertificate {
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(der, Certificate);
  } catch (e) {
    throw new LitebootError('BAD_CERT', 'not a DER X.509 certificate', { cause: e });
  }
  const tbs = cert.tbsCertificate;
  const spki = Buffer.from(AsnConvert.serialize(tbs.subjectPublicKeyInfo));
  const exts = tbs.extensions ? [...tbs.extensions] : [];
  return {
    der: Buffer.from(der),
    version: tbs.version + 1,
    serial: serialFromDer(new Uint8Array(tbs.serialNumber)),
    issuer: fromAsnName(tbs.issuer),
    issuerDer: Buffer.from(AsnConvert.serialize(tbs.issuer)),
    subject: fromAsnName(tbs.subject),
    subjectDer: Buffer.from(AsnConvert.serialize(tbs.subject)),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    spki,
    publicKey: publicKeyFromSpki(spki),
    signatureAlgorithm: cert.signatureAlgorithm.algorithm,
    extensions: exts.map(summarizeExtension),
    extensionOids: exts.map((e) => e.extnID),
    tbs: Buffer.from(cert.tbsCertificateRaw ?? AsnConvert.serialize(tbs)),
    signature: Buffer.from(cert.signatureValue),
  };
}


/** Whether `der` is signed by the holder of `issuerKey` (a credential file found on disk). */
export function certificateSignedBy(der: Uint8Array, issuerKey: KeyObject): boolean {
  try {
    return new X509Certificate(der).verify(issuerKey);
  } catch {
    return false;
  }
}
