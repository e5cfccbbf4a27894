import type { KeyObject } from 'node:crypto';
import { LitebootError } from '../errors.js';
import { bitString, content, contextConstructed, decodeOid, DerReader, raw, readTlv, sequence, TAG, tlv } from './der.js';
import { describeKey, ecCurveOfSpki, publicKeyFromSpki, spkiDer, type KeyDescription } from './keys.js';
import { decodeName, encodeName, type DistinguishedName, type NameAttribute } from './name.js';
import { OID } from './oids.js';
import { algorithmDer, keySigner, verifySignature, verifySpkiOffLoop } from './signer.js';

/** A PKCS#10 request (RFC 2986) as liteboot reads it. */
export interface ParsedCsr {
  der: Buffer;
  subject: NameAttribute[];
  /** DER of the subject Name as the requester encoded it. */
  subjectDer: Buffer;
  spki: Buffer;
  /** Imported on first use (the server's checks need only `key`). */
  readonly publicKey: KeyObject;
  /** The key's type, curve and size. */
  key: KeyDescription;
  signatureAlgorithm: string;
  /** OIDs of the extensions requested through the extensionRequest attribute (never copied). */
  requestedExtensions: string[];
  /** RFC 2986 §3: the signature over certificationRequestInfo with the subject's own key. */
  signatureValid: boolean;
}

const WHAT = 'the CSR';

/**
 * Parses a DER CSR strictly (one SEQUENCE, nothing after it, DER lengths). Structure errors
 * throw BAD_DER/BAD_CSR; the signature is checked and reported, not thrown on.
 *
 *   CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 *   CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name,
 *       subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute }
 */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  const outer = readTlv(der, 0, der.length, WHAT);
  if (outer.tag !== TAG.SEQUENCE) throw new LitebootError('BAD_CSR', 'the CSR is not a DER SEQUENCE');
  if (outer.end !== der.length) throw new LitebootError('BAD_CSR', `the CSR has ${der.length - outer.end} bytes of trailing data`);
  const top = DerReader.of(der, outer, WHAT);
  const infoT = top.next(TAG.SEQUENCE);
  const algT = top.next(TAG.SEQUENCE);
  const sigT = top.next(TAG.BIT_STRING);
  top.end();

  const info = DerReader.of(der, infoT, WHAT);
  const version = content(der, info.next(TAG.INTEGER));
  if (version.length !== 1 || version[0] !== 0) throw new LitebootError('BAD_CSR', 'the CSR version is not v1 (0)');
  const subjectT = info.next(TAG.SEQUENCE);
  const subject = decodeName(der, subjectT, WHAT);
  const spki = Buffer.from(raw(der, info.next(TAG.SEQUENCE)));
  const requested: string[] = [];
  // RFC 2986 requires the [0] attributes; some encoders omit an empty set, so accept that too.
  if (!info.done) {
    const attrs = DerReader.of(der, info.next(0xa0), WHAT);
    while (!attrs.done) {
      const attr = DerReader.of(der, attrs.next(TAG.SEQUENCE), WHAT);
      const type = decodeOid(content(der, attr.next(TAG.OID)), WHAT);
      const values = DerReader.of(der, attr.next(TAG.SET), WHAT);
      attr.end();
      while (!values.done) {
        const v = values.next();
        if (type !== OID.extensionRequest) continue;
        if (v.tag !== TAG.SEQUENCE) throw new LitebootError('BAD_CSR', 'the CSR has a malformed extensionRequest attribute');
        const exts = DerReader.of(der, v, WHAT);
        while (!exts.done) {
          const e = DerReader.of(der, exts.next(TAG.SEQUENCE), WHAT);
          requested.push(decodeOid(content(der, e.next(TAG.OID)), WHAT));
        }
      }
    }
  }
  info.end();

  const alg = DerReader.of(der, algT, WHAT);
  const algorithm = decodeOid(content(der, alg.next(TAG.OID)), WHAT);
  if (!alg.done) {
    const p = alg.next();
    if (p.tag !== TAG.NULL || p.end !== p.contentStart) throw new LitebootError('UNSUPPORTED_KEY', 'signature algorithm parameters are not supported');
  }
  alg.end();
  const sigBits = content(der, sigT);
  if (sigBits.length < 2 || sigBits[0] !== 0) throw new LitebootError('BAD_CSR', 'the CSR signature is not a whole number of bytes');

  const infoDer = raw(der, infoT);
  let publicKey: KeyObject | undefined;
  let signatureValid: boolean;
  let key: KeyDescription;
  const offLoop = verifySpkiOffLoop(algorithm, spki, infoDer, sigBits.subarray(1));
  if (offLoop) {
    const a = await offLoop;
    if (!a.keyParses) throw new LitebootError('BAD_CSR', 'its public key does not parse');
    signatureValid = a.valid;
    const curve = ecCurveOfSpki(spki)!;
    key = { type: 'EC', curve, bits: curve === 'P-256' ? 256 : 384, label: `EC ${curve}` }; // as describeKey says
  } else {
    try {
      publicKey = publicKeyFromSpki(spki);
    } catch (e) {
      throw new LitebootError('BAD_CSR', 'its public key does not parse', { cause: e });
    }
    key = describeKey(publicKey);
    signatureValid = await verifySignature(algorithm, publicKey, infoDer, sigBits.subarray(1));
  }
  return {
    der: Buffer.from(der),
    subject,
    subjectDer: Buffer.from(raw(der, subjectT)),
    spki,
    get publicKey() {
      return (publicKey ??= publicKeyFromSpki(spki));
    },
    key,
    signatureAlgorithm: algorithm,
    requestedExtensions: requested,
    signatureValid,
  };
}

/** Builds a CSR signed by `privateKey`, with an empty attribute set. */
export async function buildCsr(subject: DistinguishedName, privateKey: KeyObject): Promise<Buffer> {
  const signer = keySigner(privateKey);
  const info = sequence(tlv(TAG.INTEGER, Buffer.from([0])), encodeName(subject), spkiDer(privateKey), contextConstructed(0));
  return sequence(info, algorithmDer(signer.algorithm), bitString(await signer.sign(info)));
}
