import type { KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  Certificate,
  Extension,
  Extensions,
  Name,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { LitebootError } from '../errors.js';
import { summarizeExtension, type ExtensionSummary } from './extensions.js';
import { publicKeyFromSpki } from './keys.js';
import { fromAsnName, toAsnName, type DistinguishedName, type NameAttribute } from './name.js';
import { OID } from './oids.js';
import { verifySignature, type Signer, type SignatureAlgorithm } from './signer.js';

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
  extensions: readonly Extension[];
}

/** RFC 5280 §4.1.2.2: serials are positive, non-zero and no longer than 20 octets. */
export function serialToDer(serial: bigint): Uint8Array {
  if (serial <= 0n) throw new LitebootError('BAD_CERT', 'a certificate serial must be positive');
  let hex = serial.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  // Two's complement: a leading byte >= 0x80 would read as negative, so prefix a zero byte.
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = '00' + hex;
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length > 20) throw new LitebootError('BAD_CERT', 'a certificate serial may not exceed 20 octets');
  return bytes;
}

export function serialFromDer(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let v = BigInt('0x' + Buffer.from(bytes).toString('hex'));
  if (bytes[0]! & 0x80) v -= 1n << BigInt(bytes.length * 8);
  return v;
}

function asnName(n: DistinguishedName | Uint8Array): Name {
  return n instanceof Uint8Array ? AsnConvert.parse(n, Name) : toAsnName(n);
}

function algorithmIdentifier(alg: SignatureAlgorithm): AlgorithmIdentifier {
  return alg.nullParameters
    ? new AlgorithmIdentifier({ algorithm: alg.oid, parameters: null })
    : new AlgorithmIdentifier({ algorithm: alg.oid });
}

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** Builds and signs an X.509 v3 certificate (RFC 5280 §4.1). Returns DER. */
export function buildCertificate(t: CertificateTemplate, signer: Signer): Buffer {
  if (t.notAfter.getTime() <= t.notBefore.getTime()) {
    throw new LitebootError('BAD_CERT', 'the certificate would expire before it becomes valid');
  }
  const sigAlg = algorithmIdentifier(signer.algorithm);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(serialToDer(t.serial)).buffer,
    signature: sigAlg,
    issuer: asnName(t.issuer),
    // RFC 5280 §4.1.2.5: the Time constructor picks UTCTime through 2049, GeneralizedTime after.
    validity: new Validity({ notBefore: wholeSeconds(t.notBefore), notAfter: wholeSeconds(t.notAfter) }),
    subject: asnName(t.subject),
    subjectPublicKeyInfo: AsnConvert.parse(t.publicKey, SubjectPublicKeyInfo),
  });
  if (t.extensions.length > 0) tbs.extensions = new Extensions([...t.extensions]);
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = signer.sign(tbsDer);
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: sigAlg, signatureValue: new Uint8Array(signature).buffer });
  return Buffer.from(AsnConvert.serialize(cert));
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

/** Does `cert` carry a signature by `issuerKey`? */
export function certificateSignedBy(cert: ParsedCertificate, issuerKey: KeyObject): boolean {
  return verifySignature(cert.signatureAlgorithm, issuerKey, cert.tbs, cert.signature);
}

export function isCaCertificate(cert: ParsedCertificate): boolean {
  return cert.extensions.some((e) => e.oid === OID.basicConstraints && e.value.startsWith('CA:TRUE'));
}
